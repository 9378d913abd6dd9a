"""Loss terms: Gram normalization, scale-free relative error, total variation."""

from __future__ import annotations

import pytest
import torch

from nst_core.losses import (
    GRAM_BLOCK,
    content_loss,
    gram,
    relative_sq_error,
    style_loss,
    style_target,
    tv_loss,
)


def test_gram_of_known_tensor_is_normalized_by_feature_size():
    # C=2, H=1, W=3: F = [[1, 2, 3], [0, 1, -1]]
    f = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).reshape(1, 2, 1, 3)
    expected = torch.tensor([[14.0, -1.0], [-1.0, 2.0]]) / (2 * 1 * 3)
    g = gram(f)
    assert g.shape == (1, 2, 2)
    torch.testing.assert_close(g[0], expected)


def test_gram_is_symmetric_float32_and_size_independent():
    torch.manual_seed(0)
    f = torch.rand(1, 8, 5, 7)
    g = gram(f)
    torch.testing.assert_close(g, g.transpose(1, 2))
    # tiling the same features spatially leaves the normalized Gram unchanged
    torch.testing.assert_close(gram(f.repeat(1, 1, 2, 3)), g)
    # bf16 features (from bf16 convs) come back as a float32 Gram
    assert gram(f.bfloat16()).dtype == torch.float32


def test_relative_error_values_and_scale_freedom():
    t = torch.tensor([3.0, 4.0])
    assert relative_sq_error(t, t).item() == 0.0
    assert relative_sq_error(torch.zeros(2), t).item() == pytest.approx(1.0)
    assert relative_sq_error(2 * t, t).item() == pytest.approx(1.0)
    torch.manual_seed(1)
    x, y = torch.randn(4, 6), torch.randn(4, 6)
    base = relative_sq_error(x, y).item()
    for k in (1e-3, 0.5, 7.0, 1e4):
        assert relative_sq_error(k * x, k * y).item() == pytest.approx(base, rel=1e-5)


def test_relative_error_of_zero_target_is_finite():
    assert torch.isfinite(relative_sq_error(torch.ones(3), torch.zeros(3)))


def test_tv_of_constant_image_is_zero_and_positive_otherwise():
    assert tv_loss(torch.full((1, 3, 16, 12), 0.37)).item() == 0.0
    ramp = torch.linspace(0, 1, 11).view(1, 1, 1, 11).expand(1, 3, 4, 11)
    # horizontal steps of 0.1, no vertical change
    assert tv_loss(ramp).item() == pytest.approx(0.01, rel=1e-5)
    assert tv_loss(ramp.transpose(2, 3)).item() == pytest.approx(0.01, rel=1e-5)


def test_layer_weighted_losses_are_weighted_means():
    torch.manual_seed(2)
    a = {"l1": torch.rand(1, 4, 6, 6), "l2": torch.rand(1, 8, 3, 3)}
    b = {k: torch.rand_like(v) for k, v in a.items()}
    e1, e2 = relative_sq_error(a["l1"], b["l1"]), relative_sq_error(a["l2"], b["l2"])
    torch.testing.assert_close(content_loss(a, b, {"l1": 3.0, "l2": 1.0}), 0.75 * e1 + 0.25 * e2)
    # only the weight ratios matter
    torch.testing.assert_close(
        content_loss(a, b, {"l1": 30.0, "l2": 10.0}), content_loss(a, b, {"l1": 3.0, "l2": 1.0})
    )
    grams = {k: style_target(v) for k, v in b.items()}
    assert style_loss(b, grams, {"l1": 1.0, "l2": 1.0}).item() == pytest.approx(0.0, abs=1e-7)
    g1 = relative_sq_error(gram(a["l1"]), grams["l1"].gram)
    torch.testing.assert_close(style_loss(a, grams, {"l1": 1.0}), g1)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_gradient_matches_autograd_of_the_plain_formula(layout):
    torch.manual_seed(2)
    f = torch.randn(1, 6, 5, 7).contiguous(memory_format=layout).requires_grad_(True)
    weight = torch.randn(1, 6, 6)  # not symmetric: both halves of the gradient must count
    (gram(f) * weight).sum().backward()
    plain = f.detach().clone().requires_grad_(True)
    flat = plain.reshape(1, 6, 35)
    (flat @ flat.transpose(1, 2) / (6 * 35) * weight).sum().backward()
    torch.testing.assert_close(f.grad, plain.grad)
    # the gradient comes back in the features' layout, so the backward adds no copies
    assert f.grad.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_of_bf16_features_has_a_bf16_gradient_close_to_float32(layout):
    torch.manual_seed(3)
    f32 = torch.relu(torch.randn(1, 16, 12, 10)).contiguous(memory_format=layout)
    weight = torch.randn(1, 16, 16)
    exact = f32.bfloat16().float().requires_grad_(True)
    (gram(exact) * weight).sum().backward()
    f = f32.bfloat16().requires_grad_(True)
    g = gram(f)
    assert g.dtype == torch.float32  # the product and the loss stay float32
    # channels_last bf16 features (the bf16 convs') are multiplied in bf16: one rounding to bf16
    rtol = 1e-5 if layout == torch.contiguous_format else 2**-8
    torch.testing.assert_close(g, gram(exact).detach(), rtol=rtol, atol=1e-6)
    (g * weight).sum().backward()
    # the backward runs in the features' dtype: no float32 copy of them, no cast back
    assert f.grad.dtype == torch.bfloat16
    assert f.grad.is_contiguous(memory_format=layout)
    scale = exact.grad.abs().max().item()
    torch.testing.assert_close(f.grad.float(), exact.grad, rtol=2e-2, atol=2e-2 * scale)


@pytest.mark.parametrize("positions", [GRAM_BLOCK // 2, GRAM_BLOCK, 3 * GRAM_BLOCK + 176])
def test_bf16_gram_in_blocks_stays_within_bf16_rounding_of_the_exact_one(positions):
    # fewer positions than a block, exactly one, and several with a remainder: every position counts
    torch.manual_seed(4)
    f = torch.relu(torch.randn(1, 64, positions // 16, 16)).bfloat16()
    f = f.contiguous(memory_format=torch.channels_last)
    exact = f.double().flatten(2)
    expected = exact @ exact.transpose(1, 2) / f[0].numel()
    g = gram(f)
    assert g.dtype == torch.float32
    assert ((g.double() - expected).norm() / expected.norm()).item() < 2e-3
