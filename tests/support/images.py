"""Small generated images for the engine's unit tests (nothing read from disk or the network)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def gradient_content(width: int = 96, height: int = 64) -> Image.Image:
    """A photo stand-in: smooth color gradients with a red box and a dark disc on top."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack(
        [xx / (width - 1) * 200 + 30, yy / (height - 1) * 180 + 40, 160 - xx / (width - 1) * 80], axis=-1
    )
    rgb[height // 4 : height * 3 // 4, width // 3 : width * 2 // 3] = (220, 50, 40)
    disc = (xx - width * 0.75) ** 2 + (yy - height * 0.3) ** 2 < (height * 0.18) ** 2
    rgb[disc] = (30, 30, 60)
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")


def stripes_style(size: int = 64, period: int = 8, colors=((20, 60, 200), (250, 220, 30))) -> Image.Image:
    """Diagonal stripes in two saturated colors."""
    yy, xx = np.mgrid[0:size, 0:size]
    band = ((xx + yy) // period) % 2
    rgb = np.where(band[..., None] == 0, np.array(colors[0]), np.array(colors[1]))
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def checker_style(size: int = 64, period: int = 6, colors=((0, 160, 60), (240, 240, 240))) -> Image.Image:
    """A checkerboard in green and white."""
    yy, xx = np.mgrid[0:size, 0:size]
    band = (xx // period + yy // period) % 2
    rgb = np.where(band[..., None] == 0, np.array(colors[0]), np.array(colors[1]))
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def noise_style(size: int = 64, seed: int = 0) -> Image.Image:
    """Colored blocky noise; a new seed gives a style image no cache has seen."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
    return Image.fromarray(small, "RGB").resize((size, size), Image.Resampling.NEAREST)
