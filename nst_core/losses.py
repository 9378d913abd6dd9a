"""Loss terms of Gatys et al., normalized so that weights do not depend on image or layer size.

Features may come out of bf16 autocast; every loss is computed in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (C*H*W) of (N, C, H, W) features, in float32."""
    n, c, h, w = features.shape
    # Positions x channels is how channels_last features lie in memory: a view, no copy.
    return _Gram.apply(features.float().permute(0, 2, 3, 1).reshape(n, h * w, c))


class _Gram(torch.autograd.Function):
    """P^T P / (P*C) of (N, P, C) features; its backward is one matmul in their own layout.

    Autograd's own backward of f @ f.T takes two matmuls whose results lie in different
    layouts and then adds them: at 512 px that cost a tenth of an fp32 evaluation (bench/gram.py).
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, f: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(f)
        return f.transpose(1, 2) @ f / (f.shape[1] * f.shape[2])

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (f,) = ctx.saved_tensors
        return f @ (grad + grad.transpose(1, 2)) / (f.shape[1] * f.shape[2])


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
