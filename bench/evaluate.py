"""The fixed quality evaluator of the benchmarks: fp32, original VGG19, max pooling.

content distance = ||F(out) - F(content)||^2 / ||F(content)||^2 on relu4_2;
style distance = mean over relu1_1..relu5_1 of ||G(out) - G(style)||_F / ||G(style)||_F,
at 512 px (long side) and, for the style, also at 256 px. The texture distance is the same mean
over relu1_1..relu4_1 only: relu5_1's Gram on a few hundred positions describes the style's
objects (eyes, faces) more than its brushwork, so it is reported apart, per layer.
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image

from nst_core.losses import gram
from nst_core.transfer import scale_dims, to_tensor
from nst_core.vgg import Extractor

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
TEXTURE_LAYERS = STYLE_LAYERS[:4]
CONTENT_LAYER = "relu4_2"
CPU = torch.device("cpu")


@lru_cache(maxsize=1)
def _extractor() -> Extractor:
    return Extractor.load("original")


def _bicubic(image: Image.Image, dims: tuple[int, int]) -> torch.Tensor:
    return to_tensor(image.convert("RGB").resize(dims, Image.Resampling.BICUBIC), dims, CPU)


@torch.no_grad()
def _features(x: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return _extractor()(x, layers, "max")


def style_distances(out: Image.Image, style: Image.Image, long_side: int) -> dict[str, float]:
    """Relative Frobenius distance of Gram matrices per layer, both images at `long_side`."""
    fo = _features(_bicubic(out, scale_dims(out.size, long_side)), STYLE_LAYERS)
    fs = _features(_bicubic(style, scale_dims(style.size, long_side)), STYLE_LAYERS)
    return {k: float((gram(fo[k]) - gram(fs[k])).norm() / gram(fs[k]).norm()) for k in STYLE_LAYERS}


def _mean(per_layer: dict[str, float], layers: tuple[str, ...]) -> float:
    return sum(per_layer[k] for k in layers) / len(layers)


def style_distance(out: Image.Image, style: Image.Image, long_side: int) -> float:
    """Mean relative Frobenius distance of Gram matrices over relu1_1..relu5_1."""
    return _mean(style_distances(out, style, long_side), STYLE_LAYERS)


def content_distance(out: Image.Image, content: Image.Image, long_side: int = 512) -> float:
    """Relative squared relu4_2 distance, output resized to the content's size."""
    dims = scale_dims(content.size, long_side)
    fo = _features(_bicubic(out, dims), (CONTENT_LAYER,))[CONTENT_LAYER]
    fc = _features(_bicubic(content, dims), (CONTENT_LAYER,))[CONTENT_LAYER]
    return float((fo - fc).pow(2).sum() / fc.pow(2).sum())


def evaluate(out: Image.Image, content: Image.Image, style: Image.Image) -> dict[str, float]:
    """The figures a result is judged on, with the 512 px style distance per layer."""
    at512 = style_distances(out, style, 512)
    return {
        "content_512": content_distance(out, content, 512),
        "style_512": _mean(at512, STYLE_LAYERS),
        "texture_512": _mean(at512, TEXTURE_LAYERS),
        "style_256": style_distance(out, style, 256),
        **{f"style_512_{k}": v for k, v in at512.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Score a stylized image with the fixed evaluator.")
    parser.add_argument("output", type=Path)
    parser.add_argument("--content", type=Path, required=True)
    parser.add_argument("--style", type=Path, required=True)
    args = parser.parse_args()
    images = [Image.open(p).convert("RGB") for p in (args.output, args.content, args.style)]
    print(json.dumps(evaluate(*images)))


if __name__ == "__main__":
    main()
