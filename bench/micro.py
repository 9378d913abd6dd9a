"""Cost of one VGG19 forward+backward (relu1_1..relu5_1) per precision and size, interleaved.

Why the engine uses bf16 at every scale on bf16 CPUs, and Winograd fp32 convs (NNPACK) on the
others. Usage: python bench/micro.py [--reps 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nst_core.params import STYLE_LAYERS_DEFAULT  # noqa: E402
from nst_core.vgg import Extractor  # noqa: E402

LAYERS = [*STYLE_LAYERS_DEFAULT, "relu4_2"]
# name: (conv dtype, channels_last, Winograd convs)
VARIANTS = {"fp32": (None, False, False), "fp32+cl": (None, True, False),
            "fp32+winograd": (None, False, True), "bf16+cl": (torch.bfloat16, True, False)}
SIZES = [(64, 48), (96, 72), (128, 96), (181, 136), (256, 192), (362, 272), (512, 384)]


def one_eval(extractor: Extractor, x: torch.Tensor, channels_last: bool) -> None:
    """One forward+backward, as the engine's closure does it (the extractor sets dtype and kernels)."""
    xi = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    feats = extractor(xi, LAYERS)
    sum(f.float().pow(2).mean() for f in feats.values()).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    plain = Extractor.load()
    layouts = {True: torch.channels_last, False: torch.contiguous_format}
    extractors = {name: plain.variant(dtype, layouts[channels_last], winograd)
                  for name, (dtype, channels_last, winograd) in VARIANTS.items()}
    print(f"threads {torch.get_num_threads()}; best of {args.reps}, seconds per evaluation")
    print("| size | " + " | ".join(VARIANTS) + " | fp32 / bf16+cl | fp32+cl / fp32+winograd |\n|---|"
          + "---:|" * (len(VARIANTS) + 2))
    for w, h in SIZES:
        x = torch.rand(1, 3, h, w, requires_grad=True)
        best = dict.fromkeys(VARIANTS, float("inf"))
        for _ in range(args.reps):
            for name, (_, channels_last, _) in VARIANTS.items():
                t0 = time.perf_counter()
                one_eval(extractors[name], x, channels_last)
                best[name] = min(best[name], time.perf_counter() - t0)
        cells = " | ".join(f"{best[n]:.3f}" for n in VARIANTS)
        print(f"| {w}x{h} | {cells} | {best['fp32'] / best['bf16+cl']:.2f} | "
              f"{best['fp32+cl'] / best['fp32+winograd']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
