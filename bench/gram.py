"""The Gram: autograd's plain formula, the one-matmul backward with a float32 product, the engine's.

Real `stylize` runs at one scale (L-BFGS, the default layers), the Gram implementations
interleaved in one process after a warm-up, so the machine's drift hits all alike. The engine
multiplies bf16 features in bf16 blocks (nst_core.losses._product): on a CPU without bf16 its
convs run in float32 and the last two variants are the same code.
Usage: python bench/gram.py [--sizes 128 256 512] [--iterations 6] [--reps 3] [--preset fast]
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


def float32_product(features: torch.Tensor) -> torch.Tensor:
    """The product over all positions at once, in float32 (the engine's before 2026-12-07)."""
    m = nst_core.losses._matrix(features).float()
    return m @ m.transpose(1, 2) if features.is_contiguous() else m.transpose(1, 2) @ m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=SHARED / "the_scream.jpg")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--preset", choices=["fast", "balanced", "high"],
                        help="time whole 512 px jobs of this preset (style targets recomputed in each, "
                             "as in a CLI process) instead of iterations at one scale")
    args = parser.parse_args()
    content, style = (Image.open(p).convert("RGB") for p in (args.content, args.style))
    engine = (nst_core.losses.gram, nst_core.losses._product)
    # name: (the Gram, the product inside the one-matmul Gram)
    variants = {"plain": (plain_gram, engine[1]), "float32 product": (engine[0], float32_product),
                "engine": engine}
    stylizer = Stylizer()
    stylizer.warm_up()
    unit = f"s per {args.preset} job" if args.preset else "s per iteration"
    print(f"threads {torch.get_num_threads()}; {unit}, median of {args.reps}")
    print("| size | " + " | ".join(variants) + " | " + " | ".join(f"{n} / engine" for n in variants)
          + " |\n|---|" + "---:|" * (2 * len(variants)))
    for size in [512] if args.preset else args.sizes:
        if args.preset:
            params = StyleParams(size=size, preset=args.preset, preview_every=0)
        else:
            params = StyleParams(size=size, scales=(size,), iterations=(args.iterations,), preview_every=0)
        stylizer.stylize(content, [style], params)  # first calls at these shapes
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.reps):
            for name, (gram, product) in variants.items():
                nst_core.losses.gram, nst_core.losses._product = gram, product
                if args.preset:
                    stylizer.grams.clear()
                result = stylizer.stylize(content, [style], params)
                seconds[name].append(result.wall_seconds if args.preset
                                     else result.timings["optimize"] / args.iterations)
        nst_core.losses.gram, nst_core.losses._product = engine
        med = {name: statistics.median(s) for name, s in seconds.items()}
        print(f"| {size} | " + " | ".join(f"{m:.3f}" for m in med.values()) + " | "
              + " | ".join(f"{m / med['engine']:.2f}" for m in med.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
