"""The Winograd convs (NNPACK) give VGG19's features and input gradient, and are chosen only for AVX2 CPUs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from nst_core import cpu, winograd
from nst_core.device import ConvMode, use_winograd

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2"]


def _features_and_grad(extractor, x: torch.Tensor) -> tuple[dict, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    feats = extractor(x, LAYERS)
    sum((f ** 2).mean() for f in feats.values()).backward()
    return {k: v.detach() for k, v in feats.items()}, x.grad


@pytest.mark.skipif(not winograd.available(), reason="this torch has no NNPACK on this CPU")
def test_winograd_features_and_gradient_match_the_direct_convs(extractor) -> None:
    # At 192x256 conv1_2 runs by torch's NNPACK call and the deeper convs by the kept transforms.
    x = torch.rand(1, 3, 192, 256, generator=torch.Generator().manual_seed(0))
    assert winograd.way(extractor.convs[1], torch.empty(1, 64, 192, 256)) == "batch"
    assert winograd.way(extractor.convs[8], torch.empty(1, 256, 24, 32)) == "kept"
    direct, direct_grad = _features_and_grad(extractor, x)
    fast, fast_grad = _features_and_grad(extractor.variant(None, torch.contiguous_format, winograd=True), x)
    for name in LAYERS:
        error = ((fast[name] - direct[name]).norm() / direct[name].norm()).item()
        assert error < 1e-4, (name, error)
    grad_error = ((fast_grad - direct_grad).norm() / direct_grad.norm()).item()
    # A different kernel ran (Winograd rounds differently), and it agrees to fp32 working accuracy.
    assert 0 < grad_error < 1e-2


@pytest.mark.skipif(not winograd.available(), reason="this torch has no NNPACK on this CPU")
def test_the_winograd_mode_keeps_its_own_nchw_weights(stylizer) -> None:
    mode = ConvMode(winograd=True)
    ours = stylizer.extractor_for(mode)
    # NNPACK and the small convs left to oneDNN both read NCHW: no reorder of the input per call.
    assert all(conv.weight.is_contiguous() for conv in ours.convs)
    assert stylizer.extractor_for(mode) is ours
    assert stylizer.extractor.convs[1].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    fast = stylizer.features(x, LAYERS, "max", mode)
    direct = stylizer.features(x, LAYERS, "max")
    for name in LAYERS:
        assert fast[name].is_contiguous()
        error = ((fast[name] - direct[name]).norm() / direct[name].norm()).item()
        assert error < 1e-4, (name, error)


@pytest.mark.skipif(not winograd.available(), reason="this torch has no NNPACK on this CPU")
def test_each_conv_takes_the_kernel_that_won_at_its_size(extractor) -> None:
    def way(index: int, height: int, width: int) -> str:
        conv = extractor.convs[index]
        return winograd.way(conv, torch.empty(1, conv.in_channels, height, width))

    assert way(0, 384, 512) == "direct"  # conv1_1: 3 input channels
    assert way(12, 6, 8) == "direct"  # conv5_1 at 128 px: the transforms cost more than they save
    assert way(9, 12, 16) == "direct"  # Winograd's rounding there moved a picture's style figures
    assert way(12, 24, 32) == way(9, 48, 64) == way(5, 96, 128) == way(2, 48, 64) == "kept"
    assert way(1, 192, 256) == way(4, 192, 256) == "batch"
    # A 1024 px job runs every layer by Winograd; at 2048 px conv1_2's workspace would stay behind.
    assert way(1, 768, 1024) == "batch"
    assert way(1, 1536, 2048) == "direct"


def test_winograd_only_for_auto_precision_on_a_cpu_without_avx512() -> None:
    expected = winograd.available() and cpu.prefers_winograd(cpu.flags())
    assert use_winograd(torch.device("cpu"), "auto") is expected
    assert use_winograd(torch.device("cpu"), "fp32") is False
    assert use_winograd(torch.device("cuda"), "auto") is False


@pytest.mark.skipif(not winograd.available(), reason="this torch has no NNPACK on this CPU")
def test_an_extractor_runs_winograd_in_a_process_that_has_not_asked_for_nnpack_yet() -> None:
    # NNPACK fails every call until it is initialised; the extractor must not rely on a caller
    # (the engine's conv-mode choice) having done it first.
    probe = ("import torch; from nst_core.vgg import Extractor; "
             "x = torch.rand(1, 3, 96, 128, requires_grad=True); "
             "ours = Extractor.load(layers=['relu2_1']).variant(None, torch.contiguous_format, True); "
             "feats = ours(x, ['relu2_1']); "
             "feats['relu2_1'].sum().backward(); print(float(x.grad.abs().sum()) > 0)")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "True"
