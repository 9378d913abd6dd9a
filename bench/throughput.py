"""Throughput of one worker: a queue of N jobs at 512 px, worker concurrency 1 and then 2.

For each concurrency: its own Redis, the API and one worker (`nst worker --concurrency C`, the
model loaded once per pool process, torch threads split between them) on loopback. All N jobs
are submitted at once, then waited for. Reported per concurrency: jobs per hour from the first
start to the last finish, and per job the time outside the engine: the job's run seconds
(claim to finish, from the job view) minus the engine's own time (its last progress event),
plus the time the worker spent in the engine's progress callback (from its log); and the share
of the slots' time (span x concurrency) spent outside every job's run.
Usage: python bench/throughput.py [--jobs 20] [--size 512] [--concurrency 1 2] [--preset balanced]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api.schemas import JobView  # noqa: E402
from bench.run import SHARED  # noqa: E402
from cli.stack import ServiceStack, start_redis  # noqa: E402
from client import NstClient  # noqa: E402
from nst_core.params import PRESETS  # noqa: E402


def measure(content: Path, style: Path, jobs: int, size: int, concurrency: int,
            preset: str = "balanced") -> dict:
    """One stack, one worker with `concurrency` pool processes, `jobs` jobs queued at once."""
    with tempfile.TemporaryDirectory(prefix="nst-throughput-") as tmp:
        redis_proc, redis_url = start_redis(Path(tmp) / "redis")
        env = {"NST_REDIS_URL": redis_url, "NST_DEVICE": "cpu", "NST_DATA_DIR": str(Path(tmp) / "data"),
               "NST_MAX_ACTIVE_JOBS_PER_TENANT": "1000", "NST_MAX_QUEUE_DEPTH": "1000",
               "NST_OPEN_MODE": "true"}  # loopback only: no keys to hand out
        stack = ServiceStack({**os.environ, **env}, log_dir=Path(tmp))
        stack.adopt(redis_proc)
        try:
            stack.start_api(ready="/readyz")
            stack.start_worker(concurrency=concurrency)
            with NstClient(stack.url) as client:
                params = {"size": size, "preset": preset}
                ids = [client.submit(content, [style], params).id for _ in range(jobs)]
                views = [client.wait(i, poll=1.0, timeout=3600) for i in ids]
            callbacks = {e["job_id"]: e.get("callback_seconds", 0.0)
                         for e in stack.events("worker", "job finished")}
        finally:
            stack.stop()
    return summarize(views, callbacks, concurrency)


def summarize(views: list[JobView], callbacks: dict[str, float], concurrency: int) -> dict:
    """Jobs per hour over the busy span, and the per-job time outside the engine."""
    bad = [v.id for v in views if v.status != "succeeded"]
    if bad:
        raise SystemExit(f"throughput: jobs did not succeed: {bad}")
    start = min(v.started_at.timestamp() for v in views)
    end = max(v.finished_at.timestamp() for v in views)
    runs = [v.run_seconds for v in views]
    engine = [v.progress.elapsed_seconds for v in views]
    outside = [r - e + callbacks.get(v.id, 0.0) for v, r, e in zip(views, runs, engine, strict=True)]
    # Slot time not inside any job's run: hand-offs between jobs (ack, fetch, claim) and a slot
    # left idle at the end of the queue while the other still works.
    idle = 1 - sum(runs) / ((end - start) * concurrency)
    return {"concurrency": concurrency, "jobs": len(views), "span_s": round(end - start, 1),
            "jobs_per_hour": round(3600 * len(views) / (end - start), 1),
            "run_s_mean": round(statistics.mean(runs), 2), "slots_idle_share": round(idle, 4),
            "run_s_median": round(statistics.median(runs), 2),
            "engine_s_median": round(statistics.median(engine), 2),
            "outside_engine_s_median": round(statistics.median(outside), 3),
            "outside_engine_share": round(sum(outside) / sum(runs), 4)}



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--preset", choices=list(PRESETS), default="balanced")
    parser.add_argument("--out", type=Path, default=Path("bench/out/throughput.json"))
    args = parser.parse_args()
    rows = []
    for c in args.concurrency:
        rows.append(measure(args.content, args.style, args.jobs, args.size, c, args.preset))
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print("| concurrency | jobs | span s | jobs/hour | run s (median, mean) | engine s (median) "
          "| outside engine s (median) | outside engine share | slots idle |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['jobs']} | {r['span_s']} | {r['jobs_per_hour']} | "
              f"{r['run_s_median']}, {r['run_s_mean']} | {r['engine_s_median']} | "
              f"{r['outside_engine_s_median']} | {100 * r['outside_engine_share']:.2f}% | "
              f"{100 * r['slots_idle_share']:.1f}% |")


if __name__ == "__main__":
    main()
