"""VGG19's 3x3 convs through NNPACK's Winograd kernels, forward and input gradient, for AVX2 CPUs.

On an AVX2-only CPU oneDNN's direct fp32 convs run VGG19 at 512 px 1.8x slower than NNPACK's
Winograd transform (bench/RESULTS.md, second session of 2026-12-06). torch routes convs to
NNPACK only for batches of 16 or more and differentiates them with the direct kernel, so the
engine calls it here.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

# NNPACK transforms every kernel on every call, which small maps don't repay: on the AVX2 CPU it
# lost below 48x64 px per map and on conv1_1's 3 input channels at every size.
MIN_PIXELS = 48 * 64
MIN_IN_CHANNELS = 64
# torch keeps NNPACK's workspace at the largest size a call has needed, for the process's life:
# conv1_2 at 2048 px left 2.4 GiB behind (one fwd+bwd peaked at 11.7 GiB against 9.3 GiB direct).
# Capped at conv1_2's input in a 1024 px job, which gets every layer by Winograd, it costs 0.7 GiB.
MAX_ELEMENTS = 64 * 1024 * 768


@functools.cache
def available() -> bool:
    """Whether this torch has NNPACK on this CPU; the call also initialises NNPACK."""
    return bool(torch._nnpack_available())


def pays(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether the Winograd path beats the direct kernel for `conv` on input `x` (fp32, CPU)."""
    pixels = x.shape[-2] * x.shape[-1]
    return (conv.in_channels >= MIN_IN_CHANNELS and pixels >= MIN_PIXELS
            and conv.in_channels * pixels <= MAX_ELEMENTS and available())


class _Conv3x3(torch.autograd.Function):
    """A frozen 3x3, stride 1, padding 1 conv whose input gradient is the transposed conv."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, transposed: torch.Tensor,
                bias: torch.Tensor) -> torch.Tensor:
        ctx.transposed = transposed
        return torch._nnpack_spatial_convolution(x.contiguous(), weight, bias, [1, 1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        # The input gradient of a same-padded 3x3 conv is the conv of the gradient with the kernel
        # flipped and its channels swapped: a forward conv again, so Winograd serves it too.
        grad_input = torch._nnpack_spatial_convolution(grad.contiguous(), ctx.transposed, None, [1, 1])
        return grad_input, None, None, None


def kernels(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """`conv`'s kernel in NNPACK's layout, and its input gradient's: made once per conv."""
    weight = conv.weight.detach()
    return weight.contiguous(), weight.flip(2, 3).transpose(0, 1).contiguous()


def conv3x3(conv: nn.Conv2d, kernels: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """`conv(x)` by Winograd, with `kernels` from `kernels(conv)`."""
    return _Conv3x3.apply(x, *kernels, conv.bias)
