"""Does `torch.compile` of the VGG19 extractor pay off on this CPU? Per scale, in one process.

For each size of a 512 px job's schedule (and two aspect ratios, to exercise dynamic shapes):
the eager forward+backward time, the compiled one's first call (the compile) and its steady
time, all with the engine's bf16 convs + channels_last. Then what compiling saves over one
`balanced` job and over 10 jobs of one worker process, against what it costs.
Usage: python bench/compile.py [--reps 5] [--dynamic | --no-dynamic]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.micro import one_eval  # noqa: E402
from nst_core.device import fast_dtype  # noqa: E402
from nst_core.params import StyleParams  # noqa: E402
from nst_core.vgg import Extractor  # noqa: E402

ASPECTS = {"4:3": (4, 3), "3:4": (3, 4)}  # a landscape and a portrait photo: new shapes


def shapes(size: int, aspect: tuple[int, int]) -> list[tuple[int, int, int]]:
    """(width, height, iterations) of each scale of a `balanced` job at `size`."""
    sched = StyleParams(size=size).schedule()
    a, b = aspect
    return [(s, round(s * b / a), n) if a >= b else (round(s * a / b), s, n)
            for s, n in zip(sched.sizes, sched.iterations, strict=True)]


def timed(fn, reps: int) -> tuple[float, float]:
    """The first call's seconds and the best of the next `reps`."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return first, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dynamic", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    dtype = fast_dtype(torch.device("cpu"))
    eager = Extractor.load().to(memory_format=torch.channels_last)
    eager = eager.variant(dtype, torch.channels_last) if dtype else eager
    compiled = torch.compile(copy.deepcopy(eager), dynamic=args.dynamic)
    print(f"threads {torch.get_num_threads()}, convs in {dtype}, dynamic={args.dynamic}; seconds")
    print("| aspect | scale | iterations | eager / eval | compiled first call | compiled / eval "
          "| saved per job | compile cost |\n|---|---|---:|---:|---:|---:|---:|---:|")
    cost = saved = 0.0
    for name, aspect in ASPECTS.items():
        for w, h, n in shapes(args.size, aspect):
            x = torch.rand(1, 3, h, w, requires_grad=True)
            _, t_eager = timed(lambda x=x: one_eval(eager, x, True), args.reps)
            first, t_comp = timed(lambda x=x: one_eval(compiled, x, True), args.reps)
            compile_s = max(0.0, first - t_comp)
            cost, saved = cost + compile_s, saved + n * (t_eager - t_comp)
            print(f"| {name} | {w}x{h} | {n} | {t_eager:.3f} | {first:.1f} | {t_comp:.3f} | "
                  f"{n * (t_eager - t_comp):.2f} | {compile_s:.1f} |", flush=True)
    per_job = saved / len(ASPECTS)
    print(f"compile cost, all shapes: {cost:.1f} s; saved per job: {per_job:.2f} s; "
          f"net over 1 job: {per_job - cost:.1f} s, over 10 jobs: {10 * per_job - cost:.1f} s")


if __name__ == "__main__":
    main()
