"""NNPACK's inference conv, called through ctypes with a kept kernel transform, computes the conv."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nst_core import nnpack

pytestmark = pytest.mark.skipif(not nnpack.available(), reason="this torch has no NNPACK on this CPU")


def _relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.double() - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize(("in_channels", "out_channels"), [(64, 128), (256, 256), (512, 256)])
def test_one_transform_serves_every_size_batch_and_bias(in_channels: int, out_channels: int) -> None:
    g = torch.Generator().manual_seed(in_channels + out_channels)
    kernel = torch.randn(out_channels, in_channels, 3, 3, generator=g) * 0.05
    bias = torch.randn(out_channels, generator=g)
    transformed = nnpack.transform(kernel)
    # Sizes that grow the workspace, shrink it again, and are not multiples of the 6x6 tiles.
    for batch, height, width in [(1, 12, 16), (1, 48, 64), (2, 25, 33), (1, 7, 5)]:
        x = torch.relu(torch.randn(batch, in_channels, height, width, generator=g))
        for b in (bias, None):
            reference = F.conv2d(x.double(), kernel.double(), None if b is None else b.double(), padding=1)
            ours = nnpack.conv3x3(x, transformed, b)
            assert ours.shape == reference.shape
            # Winograd rounds differently from a direct conv, within float32's working accuracy.
            assert _relative_error(ours, reference) < 1e-5, (batch, height, width, b is None)


def test_a_strided_input_is_read_as_its_values() -> None:
    kernel = torch.randn(64, 64, 3, 3, generator=torch.Generator().manual_seed(3)) * 0.05
    x = torch.rand(1, 24, 32, 64).permute(0, 3, 1, 2)  # channels_last memory
    reference = F.conv2d(x.double(), kernel.double(), padding=1)
    assert _relative_error(nnpack.conv3x3(x, nnpack.transform(kernel), None), reference) < 1e-5


def test_other_dtypes_are_refused_rather_than_misread() -> None:
    transformed = nnpack.transform(torch.ones(64, 64, 3, 3))
    with pytest.raises(TypeError, match="float32"):
        nnpack.conv3x3(torch.ones(1, 64, 8, 8, dtype=torch.bfloat16), transformed, None)
