"""Size curve: the default preset at growing output sizes, one process each, on one pair.

For every long side: the process's wall time and peak RSS (os.wait4), the engine's time per
scale (from `nst stylize --json`), and the ratio to 512 px. pastiche's time per step at 512
and 1024 px is measured for reference as the difference of two step counts, so its start-up
is left out.
Usage: python bench/scale.py [--sizes 256 512 ...] [--content C --style S] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import BIN, SHARED, _peak_of  # noqa: E402

SIZES = (256, 512, 768, 1024, 1536, 2048)


def ours(content: Path, style: Path, size: int, preset: str, out: Path) -> dict:
    """One `nst stylize` run: wall, peak RSS and the engine's own timings."""
    output = out / f"nst_{preset}_{size}.png"
    cmd = [sys.executable, "-m", "nst_core.cli", str(content), str(style), "-o", str(output),
           "--size", str(size), "--preset", preset, "--json"]
    wall, peak_mb, _, stdout = _peak_of(cmd)
    summary = json.loads(stdout.strip().splitlines()[-1])
    timings = summary["timings"]
    return {"size": size, "wall_s": round(wall, 2), "peak_mb": round(peak_mb),
            "engine_s": summary["wall_seconds"], "pixels": summary["size"][0] * summary["size"][1],
            "scales": {k: v for k, v in timings.items() if k.startswith("scale")}, "output": str(output)}


def pastiche_step(content: Path, style: Path, size: int, out: Path, steps: tuple[int, int] = (3, 8)) -> float:
    """pastiche's seconds per L-BFGS step at `size`: (t(b) - t(a)) / (b - a), start-up cancelled."""
    walls = []
    for n in steps:
        cmd = [str(BIN / "pastiche"), "--size", str(size), "--num-steps", str(n), "--content", str(content),
               "--styles", str(style), "--output", str(out / f"pastiche_{size}_{n}.png"), "--no-verbose"]
        walls.append(_peak_of(cmd)[0])
    return (walls[1] - walls[0]) / (steps[1] - steps[0])


def table(rows: list[dict]) -> str:
    """Markdown: one row per size, engine time relative to 512 px and to the pixel ratio."""
    base = next((r for r in rows if r["size"] == 512), rows[0])
    head = ("| long side | pixels | wall s | engine s | engine / 512 px | pixels / 512 px | peak MB "
            "| per scale s |\n|---:|---:|---:|---:|---:|---:|---:|---|\n")
    lines = [f"| {r['size']} | {r['pixels']} | {r['wall_s']} | {r['engine_s']:.1f} | "
             f"{r['engine_s'] / base['engine_s']:.2f} | {r['pixels'] / base['pixels']:.2f} | "
             f"{r['peak_mb']} | "
             + ", ".join(f"{k.split('_', 1)[1]}: {v:.1f}" for k, v in r["scales"].items()) + " |"
             for r in rows]
    return head + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--pastiche-sizes", type=int, nargs="*", default=[512, 1024])
    parser.add_argument("--out", type=Path, default=Path("bench/out/scale"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        rows.append(ours(args.content, args.style, size, args.preset, args.out))
        print(json.dumps(rows[-1]), flush=True)
    steps = {s: round(pastiche_step(args.content, args.style, s, args.out), 3) for s in args.pastiche_sizes}
    (args.out / "scale.json").write_text(json.dumps({"runs": rows, "pastiche_s_per_step": steps}, indent=1))
    print(table(rows))
    print("pastiche seconds per step:", steps)


if __name__ == "__main__":
    main()
