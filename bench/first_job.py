"""A worker's first job, with and without the engine's warm-up in setup, in fresh processes.

Each process builds a Stylizer (as a worker pool process does), optionally warms it up, then
runs one job; the two kinds of process alternate, so the machine's drift falls on both.
Usage: python bench/first_job.py [--reps 3] [--size 512] [--preset balanced]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import SHARED  # noqa: E402

CHILD = """
import json, sys, time
from PIL import Image
from nst_core.params import StyleParams
from nst_core.transfer import Stylizer
warm, size, preset, content, style = sys.argv[1] == "1", int(sys.argv[2]), *sys.argv[3:6]
images = [Image.open(p).convert("RGB") for p in (content, style)]
t0 = time.perf_counter()
engine = Stylizer()
if warm:
    engine.warm_up()
t1 = time.perf_counter()
engine.stylize(images[0], [images[1]], StyleParams(size=size, preset=preset, preview_every=0))
print(json.dumps({"setup_s": t1 - t0, "first_job_s": time.perf_counter() - t1}))
"""


def one(warm: bool, args: argparse.Namespace) -> dict[str, float]:
    """Setup and first-job seconds of one fresh process."""
    out = subprocess.run([sys.executable, "-c", CHILD, "1" if warm else "0", str(args.size), args.preset,
                          str(args.content), str(args.style)], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    args = parser.parse_args()
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(args.reps):
        for warm in (False, True):
            runs[warm].append(one(warm, args))
    print("| setup | setup s (median) | first job s (median) | first job s (all) |\n|---|---:|---:|---|")
    for warm, rows in runs.items():
        firsts = [r["first_job_s"] for r in rows]
        print(f"| {'load + warm-up' if warm else 'load only'} | "
              f"{statistics.median(r['setup_s'] for r in rows):.2f} | {statistics.median(firsts):.2f} | "
              f"{', '.join(f'{t:.2f}' for t in firsts)} |")


if __name__ == "__main__":
    main()
