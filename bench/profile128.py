"""Where an iteration at the 128 px scale goes: cProfile of one warm run beside bare passes.

One `stylize` at 128 px (40 L-BFGS iterations, after a warm-up run at the same shape, so no
first-call costs) under cProfile, and 40 bare forward+backward passes through the same layers
with the same conv dtype, in one process. The warm-up run is timed too: the first run at a
shape in a process, as a job's first scale is, and what its first calls cost over a warm one.
Usage: python bench/profile128.py [--content C --style S] [--iterations 40]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import SHARED  # noqa: E402
from nst_core.device import conv_mode  # noqa: E402
from nst_core.params import StyleParams  # noqa: E402
from nst_core.transfer import Stylizer  # noqa: E402


def bare_passes(stylizer: Stylizer, params: StyleParams, dims: tuple[int, int], n: int) -> float:
    """Seconds for n forward+backward passes of VGG19 at `dims`, as the engine runs them."""
    x = torch.rand(1, 3, dims[1], dims[0], device=stylizer.device, requires_grad=True)
    layers = set(params.content_layers) | set(params.style_layers)
    mode = conv_mode(stylizer.device, params.precision)
    t0 = 0.0
    for i in range(n + 3):  # three warm-up passes
        if i == 3:
            t0 = time.perf_counter()
        feats = stylizer.features(x, layers, params.pooling, mode)
        sum(f.float().sum() for f in feats.values()).backward()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    content, style = (Image.open(p).convert("RGB") for p in (args.content, args.style))
    stylizer = Stylizer()
    params = StyleParams(size=128, scales=(128,), iterations=(args.iterations,), preview_every=0)
    t0 = time.perf_counter()
    first = stylizer.stylize(content, [style], params)  # warm-up at this shape
    cold = time.perf_counter() - t0 - first.timings["style_targets"]  # the warm run hits the cache
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    result = stylizer.stylize(content, [style], params)
    profile.disable()
    run = time.perf_counter() - t0
    bare = bare_passes(stylizer, params, result.image.size, args.iterations)
    print(f"stylize, {args.iterations} iterations at {result.image.size}: {run:.2f} s; "
          f"bare forward+backward x{args.iterations}: {bare:.2f} s; ratio {run / bare:.2f}")
    print(f"the same run cold (first at this shape in the process, less its style targets): {cold:.2f} s; "
          f"first calls cost {cold - run:.2f} s, {cold / bare:.2f}x the bare passes")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(20)


if __name__ == "__main__":
    main()
