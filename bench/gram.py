"""The Gram's backward: autograd's of the plain formula against the engine's one-matmul one.

Real `stylize` runs at one scale (L-BFGS, the default layers), the two Gram implementations
interleaved in one process after a warm-up, so the machine's drift hits both alike.
Usage: python bench/gram.py [--sizes 128 256 512] [--iterations 6] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import nst_core.losses  # noqa: E402
from bench.run import SHARED  # noqa: E402
from nst_core.params import StyleParams  # noqa: E402
from nst_core.transfer import Stylizer  # noqa: E402


def plain_gram(features: torch.Tensor) -> torch.Tensor:
    """The textbook F F^T / (C*H*W), differentiated by autograd (the engine's before 2026-12-04)."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=SHARED / "the_scream.jpg")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    content, style = (Image.open(p).convert("RGB") for p in (args.content, args.style))
    variants = {"plain": plain_gram, "one matmul": nst_core.losses.gram}
    stylizer = Stylizer()
    stylizer.warm_up()
    print(f"threads {torch.get_num_threads()}; s per iteration, median of {args.reps}")
    print("| size | " + " | ".join(variants) + " | plain / one matmul |\n|---|---:|---:|---:|")
    for size in args.sizes:
        params = StyleParams(size=size, scales=(size,), iterations=(args.iterations,), preview_every=0)
        stylizer.stylize(content, [style], params)  # first calls at this shape, style targets cached
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.reps):
            for name, fn in variants.items():
                nst_core.losses.gram = fn
                result = stylizer.stylize(content, [style], params)
                seconds[name].append(result.timings["optimize"] / args.iterations)
        nst_core.losses.gram = variants["one matmul"]
        med = {name: statistics.median(s) for name, s in seconds.items()}
        print(f"| {size} | {med['plain']:.3f} | {med['one matmul']:.3f} | "
              f"{med['plain'] / med['one matmul']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
