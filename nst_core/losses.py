"""Loss terms of Gatys et al., normalized so that weights do not depend on image or layer size.

Features may come out of bf16 autocast; every loss is computed in float32.
"""

from __future__ import annotations

import torch


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (C*H*W) of (N, C, H, W) features, in float32."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def relative_sq_error(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||x - target||^2 / ||target||^2: scale-free, so layers and sizes weigh alike."""
    return (x.float() - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)


def content_loss(features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                 layer_weights: dict[str, float]) -> torch.Tensor:
    """Weighted mean over layers of the relative squared feature error."""
    total = sum(layer_weights.values())
    return sum(w / total * relative_sq_error(features[name], targets[name])
               for name, w in layer_weights.items())


def style_loss(features: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor],
               layer_weights: dict[str, float]) -> torch.Tensor:
    """Weighted mean over layers of the relative squared Gram-matrix error."""
    total = sum(layer_weights.values())
    return sum(w / total * relative_sq_error(gram(features[name]), target_grams[name])
               for name, w in layer_weights.items())


def layer_positions(dims: tuple[int, int], layer: str) -> int:
    """Spatial positions of a VGG19 layer's feature map for a (width, height) input."""
    shift = int(layer.lstrip("convrelu")[0]) - 1  # block b is pooled b-1 times (floor halving)
    return (dims[0] >> shift) * (dims[1] >> shift)


def position_weights(layers: dict[str, float], dims: tuple[int, int], full_at: int) -> dict[str, float]:
    """Layer weights, each scaled by min(1, positions / full_at) for a (width, height) style image.

    A Gram matrix taken on few positions describes the style's objects (a whole eye fills
    relu5_1 of a 128 px portrait) rather than its texture; matching it paints those objects.
    """
    if full_at <= 0:
        return dict(layers)
    return {name: w * min(1.0, layer_positions(dims, name) / full_at) for name, w in layers.items()}


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels (smoothness prior)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
