"""A frozen VGG19 feature extractor that returns features by their paper names (relu4_2 ...)."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from nst_core import winograd
from nst_core.params import LAYER_NAMES
from nst_core.weights import InputConvention, load_vgg19_convs

BLOCK_SIZES = (2, 2, 4, 4, 4)
# (conv name, relu name) of each of the 16 convs, in order.
_CONV_NAMES: list[tuple[str, str]] = [
    (f"conv{b}_{i}", f"relu{b}_{i}") for b, n in enumerate(BLOCK_SIZES, 1) for i in range(1, n + 1)
]
_CONV_OF: dict[str, int] = {name: i for i, pair in enumerate(_CONV_NAMES) for name in pair}
_LAST_CONV_OF_BLOCK = {sum(BLOCK_SIZES[: b + 1]) - 1 for b in range(len(BLOCK_SIZES))}


def convs_needed(layers: Iterable[str]) -> int:
    """How many of the 16 convs a set of layers needs: the network is cut after the deepest."""
    return max(_CONV_OF[name] for name in layers) + 1


class Extractor(nn.Module):
    """VGG19 features for RGB images in 0..1; the input convention is applied inside."""

    def __init__(self, convs: nn.ModuleList, convention: InputConvention) -> None:
        super().__init__()
        self.convs = convs
        self.convention = convention
        order = [2, 1, 0] if convention.bgr else [0, 1, 2]
        mean = torch.tensor(convention.mean) / convention.scale
        std = torch.tensor(convention.std) / convention.scale
        # Folding channel order, scale, mean and std into one affine map keeps it a single op.
        self.register_buffer("order", torch.tensor(order), persistent=False)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()
        # Whether the large convs run through NNPACK's Winograd kernels (fp32 CPU only): set by
        # `variant`, because those kernels read NCHW and the layout is the variant's.
        self.winograd = False
        self._winograd_convs: list[winograd.Conv3x3] | None = None

    @classmethod
    def load(cls, source: str = "original", layers: Iterable[str] = LAYER_NAMES) -> Extractor:
        """Load weights from `source` for just the convs `layers` need."""
        convs, convention = load_vgg19_convs(source, convs_needed(layers))
        return cls(convs, convention)

    def variant(self, dtype: torch.dtype | None, memory_format: torch.memory_format,
                winograd: bool = False) -> Extractor:
        """A copy whose convs run in `dtype` (None: as they are) on inputs in `memory_format`,
        the large ones by Winograd when `winograd` (fp32 CPU, NCHW).

        What autocast does, without casting the 20M weights again at every conv call: that cost
        5% of an evaluation at 128 px and 2% at 512 px on 2 cores (bench/RESULTS.md, 2026-12-06).
        The input is still normalized in float32.
        """
        copy_ = copy.deepcopy(self)
        copy_.convs.to(memory_format=memory_format)
        if dtype is not None:
            copy_.convs.to(dtype)
        copy_.winograd = winograd
        copy_._winograd_convs = None  # made from these weights when first needed
        return copy_

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB 0..1 -> what the weights were trained on, in the convs' dtype."""
        return ((x.index_select(1, self.order) - self.mean) / self.std).to(self.convs[0].weight.dtype)

    def forward(self, x: torch.Tensor, layers: Iterable[str],
                pooling: str = "max") -> dict[str, torch.Tensor]:
        """Features of `x` at `layers`, computing nothing past the deepest one."""
        wanted = set(layers)
        unknown = wanted - _CONV_OF.keys()
        if unknown:
            raise KeyError(f"unknown VGG19 layer(s): {sorted(unknown)}")
        last = convs_needed(wanted) - 1
        if last >= len(self.convs):
            raise ValueError(f"extractor has {len(self.convs)} convs; {sorted(wanted)} need more")
        pool = F.max_pool2d if pooling == "max" else F.avg_pool2d
        feats: dict[str, torch.Tensor] = {}
        h = self.normalize(x)
        for i in range(last + 1):
            name_conv, name_relu = _CONV_NAMES[i]
            h = self._conv(i, h)
            if name_conv in wanted:
                feats[name_conv] = h
            h = F.relu(h)
            if name_relu in wanted:
                feats[name_relu] = h
            if i in _LAST_CONV_OF_BLOCK and i < last:
                h = pool(h, 2)
        return feats

    def _conv(self, i: int, h: torch.Tensor) -> torch.Tensor:
        if not self.winograd:
            return self.convs[i](h)
        if self._winograd_convs is None:
            self._winograd_convs = [winograd.Conv3x3(c) for c in self.convs]
        return self._winograd_convs[i](h)
