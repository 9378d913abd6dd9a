"""VGG19's 3x3 convs through NNPACK's Winograd kernels, forward and input gradient, for AVX2 CPUs.

On an AVX2-only CPU oneDNN's direct fp32 convs run VGG19 at 512 px 1.8x slower than NNPACK's
Winograd transform (bench/RESULTS.md, second session of 2026-12-06). torch routes convs to
NNPACK only for batches of 16 or more and differentiates them with the direct kernel, so the
engine calls it here: by torch's NNPACK call on large maps, and by NNPACK's own inference call
with the kernel transformed once (nst_core/nnpack.py) on maps of 24x32 to 96x128 px.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from nst_core import nnpack

Way = Literal["direct", "batch", "kept"]

# torch's NNPACK call transforms every kernel on every call, which small maps don't repay: on the
# AVX2 CPU it lost below 48x64 px per map and on conv1_1's 3 input channels at every size.
MIN_PIXELS = 48 * 64
MIN_IN_CHANNELS = 64
# torch keeps NNPACK's workspace at the largest size a call has needed, for the process's life:
# conv1_2 at 2048 px left 2.4 GiB behind (one fwd+bwd peaked at 11.7 GiB against 9.3 GiB direct).
# Capped at conv1_2's input in a 1024 px job, which gets every layer by Winograd, it costs 0.7 GiB.
MAX_ELEMENTS = 64 * 1024 * 768
# With the transform kept and a workspace reused, NNPACK's inference call beats both from 12x16 px
# to 96x128 px (512->512 at 24x32 px: 12.6 ms against oneDNN's 37 ms; at 48x64 px 40 against
# torch's call's 71 ms; 256->256 at 96x128 px 48 against 56 ms); from 192x256 px the two NNPACK
# calls tie, and at 6x8 px oneDNN wins. At 12x16 px (conv4 at 128 px, conv5_1 at 256 px) it is
# left to oneDNN all the same: there the Winograd rounding moved starry night's `fast` picture to
# a style-at-256 px figure of 0.282-0.295 against 0.273 and a bound of 0.292, from 24x32 px up
# 0.276-0.279. Each kept layer holds its transform in both directions: 2 x 1 MB for conv1_2 ..
# 2 x 67 MB for a 512-channel layer, 0.74 GB for VGG19 up to relu5_1 (bench/RESULTS.md, 2026-12-07).
KEPT_PIXELS = (24 * 32, 96 * 128)


@functools.cache
def available() -> bool:
    """Whether this torch has NNPACK on this CPU; the call also initialises NNPACK."""
    return bool(torch._nnpack_available())


def way(conv: nn.Conv2d, x: torch.Tensor) -> Way:
    """Which kernel runs `conv` (fp32, CPU) fastest on input `x`: oneDNN's, or NNPACK's two."""
    pixels = x.shape[-2] * x.shape[-1]
    if not available():
        return "direct"
    narrowest = min(conv.in_channels, conv.out_channels)
    if narrowest >= MIN_IN_CHANNELS and KEPT_PIXELS[0] <= pixels <= KEPT_PIXELS[1] and nnpack.available():
        return "kept"
    if conv.in_channels >= MIN_IN_CHANNELS and pixels >= MIN_PIXELS:
        return "batch" if conv.in_channels * pixels <= MAX_ELEMENTS else "direct"
    return "direct"


Run = Callable[[torch.Tensor, object, torch.Tensor | None], torch.Tensor]


class _Conv3x3(torch.autograd.Function):
    """A frozen 3x3, stride 1, padding 1 conv whose input gradient is the transposed conv."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, run: Run, kernel: object, transposed: object,
                bias: torch.Tensor) -> torch.Tensor:
        ctx.run, ctx.transposed = run, transposed
        return run(x.contiguous(), kernel, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        # The input gradient of a same-padded 3x3 conv is the conv of the gradient with the kernel
        # flipped and its channels swapped: a forward conv again, so Winograd serves it too.
        return ctx.run(grad.contiguous(), ctx.transposed, None), None, None, None, None


def _batch(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch._nnpack_spatial_convolution(x, kernel, bias, [1, 1])


class Conv3x3:
    """One of VGG19's frozen convs, run by the kernel `way` picks for each input's size."""

    def __init__(self, conv: nn.Conv2d) -> None:
        self.conv = conv
        weight = conv.weight.detach()
        # NNPACK reads NCHW; the input gradient's kernel is flipped with its channels swapped.
        self.kernels = (weight.contiguous(), weight.flip(2, 3).transpose(0, 1).contiguous())
        self._transformed: tuple[nnpack.Transformed, nnpack.Transformed] | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        chosen = way(self.conv, x)
        if chosen == "direct":
            return self.conv(x)
        if chosen == "batch":
            return _Conv3x3.apply(x, _batch, *self.kernels, self.conv.bias)
        if self._transformed is None:  # once per process; only the layers that take this way
            self._transformed = (nnpack.transform(self.kernels[0]), nnpack.transform(self.kernels[1]))
        return _Conv3x3.apply(x, nnpack.conv3x3, *self._transformed, self.conv.bias)

