"""Loss terms of Gatys et al., normalized so that weights do not depend on image or layer size.

Features may come out of bf16 convs; every loss is computed in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (C*H*W) of (N, C, H, W) features, in float32."""
    if not (features.is_contiguous() or features.is_contiguous(memory_format=torch.channels_last)):
        features = features.contiguous(memory_format=torch.channels_last)
    return _Gram.apply(features)


# Positions per block of a reduced-precision Gram (`_product`).
GRAM_BLOCK = 1024


def _product(f: torch.Tensor) -> torch.Tensor:
    """The features' matrix times its transpose, (N, C, C) in float32.

    bf16 channels_last features (bf16 convs) are multiplied in bf16, in blocks of GRAM_BLOCK
    positions whose products are summed in float32. For relu1_1 at 512 px on an AMD EPYC with
    AVX512-BF16, a cast to float32 and one float32 product took 28 ms, one bf16 product 36 ms (the
    CPU's matmul splits 196,608 positions poorly), the blocks 4 ms; a `fast` job got 7% shorter
    (bench/RESULTS.md, third session of 2026-12-07). Each block's product is rounded to bf16, an
    error of 1e-4 to 2e-3 of the Gram, below that of the bf16 features themselves.
    """
    m = _matrix(f)
    if f.dtype != torch.bfloat16 or f.is_contiguous():  # fp16's range would overflow in the blocks
        m = m.float()
        return m @ m.transpose(1, 2) if f.is_contiguous() else m.transpose(1, 2) @ m
    n, positions, c = m.shape
    whole = positions // GRAM_BLOCK * GRAM_BLOCK
    rest = m[:, whole:]
    product = (rest.transpose(1, 2) @ rest).float()
    if whole:
        blocks = m[:, :whole].reshape(-1, GRAM_BLOCK, c)
        product += (blocks.transpose(1, 2) @ blocks).float().view(n, -1, c, c).sum(1)
    return product


def _matrix(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) as the matrix its memory already is: (N, C, H*W), or (N, H*W, C) if channels_last."""
    n, c, h, w = t.shape
    if t.is_contiguous():
        return t.view(n, c, h * w)
    return t.permute(0, 2, 3, 1).view(n, h * w, c)


class _Gram(torch.autograd.Function):
    """The Gram of (N, C, H, W) features, read in their own layout; its backward is one matmul.

    Autograd's own backward of f @ f.T takes two matmuls whose results lie in different
    layouts and then adds them: at 512 px that cost a tenth of an fp32 evaluation (bench/gram.py).
    The product comes out in float32 (`_product`); the backward runs in the features' dtype (bf16 from
    bf16 convs) with 1/(C*H*W) folded into the small C x C factor, and writes into a fresh tensor,
    into which autograd adds the next conv's gradient in place. A float32 copy of relu1_1 at
    512 px, its division, its cast back to bf16 and an out-of-place sum cost as much as the matmuls.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, f: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(f)
        return _product(f) / f[0].numel()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (f,) = ctx.saved_tensors
        factor = ((grad + grad.transpose(1, 2)) / f[0].numel()).to(f.dtype)  # symmetric
        out = torch.empty_like(f)
        if f.is_contiguous():
            torch.matmul(factor, _matrix(f), out=_matrix(out))
        else:
            torch.matmul(_matrix(f), factor, out=_matrix(out))
        return out


def relative_sq_error(x: torch.Tensor, target: torch.Tensor,
                      norm2: torch.Tensor | None = None) -> torch.Tensor:
    """||x - target||^2 / ||target||^2 (or / norm2): scale-free, so layers and sizes weigh alike."""
    norm2 = target.pow(2).sum() if norm2 is None else norm2
    return (x.float() - target).pow(2).sum() / norm2.clamp_min(1e-12)


def content_loss(features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                 layer_weights: dict[str, float]) -> torch.Tensor:
    """Weighted mean over layers of the relative squared feature error."""
    total = sum(layer_weights.values())
    return sum(w / total * relative_sq_error(features[name], targets[name])
               for name, w in layer_weights.items())


@dataclass(frozen=True)
class StyleTarget:
    """One style layer's statistics: the Gram matrix of its features, clipped per channel."""

    gram: torch.Tensor
    ceiling: torch.Tensor | None = None  # (1, C, 1, 1); None: no clipping
    # The error is relative to the unclipped Gram's energy: a style whose deep features are
    # mostly rare (a portrait) keeps little of it after clipping, and that layer then pulls
    # little, instead of the clipped remainder being blown up to full strength.
    norm2: torch.Tensor | None = None

    def clip(self, features: torch.Tensor) -> torch.Tensor:
        """Features clipped at this target's per-channel ceiling."""
        return features if self.ceiling is None else torch.minimum(features.float(), self.ceiling)


def style_target(features: torch.Tensor, quantile: float | None = None) -> StyleTarget:
    """Gram target of style features; with `quantile`, each channel is first clipped at that
    quantile of its values over the image, so features that fire in only a few places (an eye,
    a face) drop out of the statistics while widespread brushwork stays."""
    if quantile is None:
        return StyleTarget(gram(features))
    flat = features.float().flatten(2)  # (N, C, H*W)
    ceiling = torch.quantile(flat, quantile, dim=2, keepdim=True).unsqueeze(-1)
    full = gram(features)
    clipped = gram(StyleTarget(full, ceiling).clip(features))
    return StyleTarget(clipped, ceiling, full.pow(2).sum())


def style_loss(features: dict[str, torch.Tensor], targets: dict[str, StyleTarget],
               layer_weights: dict[str, float]) -> torch.Tensor:
    """Weighted mean over layers of the relative squared Gram-matrix error."""
    total = sum(layer_weights.values())
    return sum(w / total * _layer_error(features[name], targets[name]) for name, w in layer_weights.items())


def _layer_error(features: torch.Tensor, target: StyleTarget) -> torch.Tensor:
    return relative_sq_error(gram(target.clip(features)), target.gram, target.norm2)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels (smoothness prior)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
