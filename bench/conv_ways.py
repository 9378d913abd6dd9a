"""Each VGG19 conv of a 512 px job by each kernel of the Winograd mode, and the way the engine picks.

For every conv at every map size a `fast` job meets, forward plus input gradient (the transposed
conv) by oneDNN's direct kernel, torch's NNPACK call and NNPACK's inference call with the kernel
transform kept (nst_core/winograd.py), interleaved, median of --reps. Then one whole VGG19
forward+backward per scale with and without the kept transforms, paired. fp32, CPU.
Usage: python bench/conv_ways.py [--reps 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.micro import LAYERS, one_eval  # noqa: E402
from nst_core import memory, nnpack, winograd  # noqa: E402
from nst_core.vgg import Extractor  # noqa: E402

SCALES = [(128, 96), (256, 192), (512, 384)]
NONE_KEPT = (1, 0)


def _median_ms(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(reps + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i:  # the first round pays first calls
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def _ways(conv: torch.nn.Conv2d, x: torch.Tensor, grad: torch.Tensor) -> dict[str, Callable[[], object]]:
    """Forward + input gradient of `conv` at `x` by each kernel."""
    weight, transposed = winograd.Conv3x3(conv).kernels
    fns: dict[str, Callable[[], object]] = {
        "direct": lambda: (F.conv2d(x, weight, conv.bias, padding=1),
                           F.conv2d(grad, transposed, padding=1)),
        "batch": lambda: (torch._nnpack_spatial_convolution(x, weight, conv.bias, [1, 1]),
                          torch._nnpack_spatial_convolution(grad, transposed, None, [1, 1])),
    }
    if nnpack.available():
        kept = nnpack.transform(weight), nnpack.transform(transposed)
        fns["kept"] = lambda: (nnpack.conv3x3(x, kept[0], conv.bias), nnpack.conv3x3(grad, kept[1], None))
    return fns


def per_conv(extractor: Extractor, reps: int) -> None:
    print("| scale | conv | in -> out | map | direct ms | torch's NNPACK ms | kept ms | picked |")
    print("|---|---|---|---|---:|---:|---:|---|")
    for w, h in SCALES:
        side_h, side_w, index = h, w, 0
        for block, n in enumerate((2, 2, 4, 4, 1), 1):
            for i in range(1, n + 1):
                conv = extractor.convs[index]
                x = torch.rand(1, conv.in_channels, side_h, side_w)
                grad = torch.randn(1, conv.out_channels, side_h, side_w)
                ms = _median_ms(_ways(conv, x, grad), reps) if conv.in_channels > 3 else {}
                cells = " | ".join(f"{ms[k]:.1f}" if k in ms else "-" for k in ("direct", "batch", "kept"))
                print(f"| {w}x{h} | conv{block}_{i} | {conv.in_channels} -> {conv.out_channels} | "
                      f"{side_w}x{side_h} | {cells} | {winograd.way(conv, x)} |")
                index += 1
            side_h, side_w = side_h // 2, side_w // 2


def whole_evaluations(extractor: Extractor, reps: int) -> None:
    print("\n| scale | without kept ms | with kept ms | paired ratio (median, range) |")
    print("|---|---:|---:|---|")
    kept_pixels = winograd.KEPT_PIXELS
    for w, h in SCALES:
        x = torch.rand(1, 3, h, w)
        times: dict[tuple[int, int], list[float]] = {NONE_KEPT: [], kept_pixels: []}
        for i in range(reps + 1):
            for setting in times:
                winograd.KEPT_PIXELS = setting
                t0 = time.perf_counter()
                one_eval(extractor, x.clone().requires_grad_(True), channels_last=False)
                if i:
                    times[setting].append(time.perf_counter() - t0)
        winograd.KEPT_PIXELS = kept_pixels
        ratios = [b / a for a, b in zip(times[NONE_KEPT], times[kept_pixels], strict=True)]
        print(f"| {w}x{h} | {statistics.median(times[NONE_KEPT]) * 1e3:.0f} | "
              f"{statistics.median(times[kept_pixels]) * 1e3:.0f} | "
              f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if not winograd.available():
        raise SystemExit("bench: this torch has no NNPACK on this CPU")
    memory.keep_freed_memory()  # as a Stylizer does
    extractor = Extractor.load(layers=LAYERS).variant(None, torch.contiguous_format, winograd=True)
    with torch.no_grad():
        per_conv(extractor, args.reps)
    whole_evaluations(extractor, args.reps)


if __name__ == "__main__":
    main()
