"""Load run of the job service: its own Redis, the API and N workers, M tiny jobs from C clients.

    .venv/bin/python bench/load.py --workers 2 --jobs 40 --clients 8

Everything listens on free loopback ports in a temporary directory and is stopped at the end.
Each client thread has its own tenant key: it submits its share of the jobs (honouring
Retry-After on 429/503) and polls its unfinished jobs in between. The report:

- accepted / rejected (429, 503; each must carry Retry-After) / completed (succeeded);
- lost: accepted jobs that are missing or not finished when the run ends (must be 0);
- duplicated: jobs delivered more than once (attempts > 1) or finished more than once (more than
  one "job finished" worker log line, or the store's end counters disagree) (must be 0);
- p50/p99 latency of POST /v1/jobs and GET /v1/jobs/{id} while the workers run the jobs;
- then, with the jobs done, GET /v1/jobs/{id} throughput next to /healthz throughput of the same
  server, each from C threads for --burst-seconds.

Not a test: nothing is asserted, the exit status is 1 when a job was lost or duplicated.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from cli.stack import ServiceStack, start_redis
from service.contract import JobStatus

TINY = {"size": 32, "scales": [32], "iterations": [2], "optimizer": "adam", "preview_every": 0}


def _png(seed: int, size: tuple[int, int]) -> bytes:
    img = Image.effect_noise(size, 30 + seed % 50).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@dataclass
class Tally:
    """What the client threads saw (appends from many threads: list.append is atomic)."""

    post_ms: list[float] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    key_of: dict[str, str] = field(default_factory=dict)  # job id -> the key that created it
    rejected: Counter = field(default_factory=Counter)  # status -> count
    rejected_without_retry_after: int = 0
    errors: Counter = field(default_factory=Counter)  # other statuses / transport errors
    final: dict[str, dict] = field(default_factory=dict)  # job id -> last view


class Stack(ServiceStack):
    """Redis, the API and the workers as subprocesses of this script."""

    def __init__(self, tmp: Path, workers: int, tenants: int, env: dict[str, str]) -> None:
        self.keys = {f"load-key-{i}-{os.urandom(6).hex()}": f"tenant{i}" for i in range(tenants)}
        redis_proc, self.redis_url = start_redis(tmp / "redis")
        super().__init__({**os.environ, "NST_REDIS_URL": self.redis_url,
                          "NST_DATA_DIR": str(tmp / "data"), "NST_DEVICE": "cpu",
                          "NST_API_KEYS": ",".join(f"{k}:{t}" for k, t in self.keys.items()),
                          **env}, log_dir=tmp)
        self.adopt(redis_proc)
        self.start_api(ready="/readyz")
        for _ in range(workers):
            self.start_worker()

    def finished_lines(self) -> Counter:
        """job id -> number of "job finished" lines in the worker logs."""
        return Counter(e["job_id"] for e in self.events("worker", "job finished") if "job_id" in e)

    def stop(self, timeout: float = 30) -> None:
        """Workers first, Redis last."""
        super().stop(timeout)


def client(stack: Stack, key: str, n_jobs: int, seed: int, tally: Tally, deadline: float) -> None:
    """Submit n_jobs (retrying refusals after Retry-After), polling the unfinished ones between."""
    content, style = _png(seed, (48, 32)), _png(seed + 1, (32, 32))
    pending: list[str] = []
    retry_at = 0.0
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as http:
        while (n_jobs or pending) and time.monotonic() < deadline:
            if n_jobs and time.monotonic() >= retry_at:
                files = [("content", ("c.png", content)), ("style", ("s.png", style))]
                start = time.perf_counter()
                try:
                    r = http.post("/v1/jobs", files=files, data={"params": json.dumps(TINY)})
                except httpx.HTTPError as e:
                    tally.errors[type(e).__name__] += 1
                    continue
                tally.post_ms.append(1000 * (time.perf_counter() - start))
                if r.status_code == 202:
                    pending.append(r.json()["id"])
                    tally.accepted.append(r.json()["id"])
                    tally.key_of[r.json()["id"]] = key
                    n_jobs -= 1
                elif r.status_code in (429, 503):
                    tally.rejected[r.status_code] += 1
                    after = r.headers.get("retry-after")
                    if after is None:
                        tally.rejected_without_retry_after += 1
                    # Honour Retry-After, capped so a short run stays short.
                    retry_at = time.monotonic() + min(float(after or 1), 2.0)
                else:
                    tally.errors[r.status_code] += 1
                    n_jobs -= 1
            for job_id in list(pending):
                start = time.perf_counter()
                try:
                    r = http.get(f"/v1/jobs/{job_id}")
                except httpx.HTTPError as e:
                    tally.errors[type(e).__name__] += 1
                    continue
                tally.get_ms.append(1000 * (time.perf_counter() - start))
                if r.status_code != 200:
                    tally.errors[f"GET {r.status_code}"] += 1
                    continue
                view = r.json()
                tally.final[job_id] = view
                if JobStatus(view["status"]).is_terminal:
                    pending.remove(job_id)
            time.sleep(0.1)


def burst(url: str, path_of, headers: dict[str, str], threads: int, seconds: float) -> float:
    """Requests per second that `threads` keep-alive clients get from GET path_of() in `seconds`."""
    counts = [0] * threads
    stop_at = time.monotonic() + seconds

    def run(i: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            while time.monotonic() < stop_at:
                if http.get(path_of()).status_code == 200:
                    counts[i] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    start = time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 1)


def run(args: argparse.Namespace) -> dict:
    env = {"NST_MAX_QUEUE_DEPTH": str(args.max_queue), "NST_RETRY_AFTER_SECONDS": "1",
           "NST_MAX_ACTIVE_JOBS_PER_TENANT": str(args.max_active), "NST_LOG_LEVEL": "INFO"}
    with tempfile.TemporaryDirectory(prefix="nst-load-") as tmp:
        started = time.monotonic()
        stack = Stack(Path(tmp), args.workers, args.clients, env)
        try:
            startup = time.monotonic() - started
            tally = Tally()
            keys = list(stack.keys)
            shares = [args.jobs // args.clients + (i < args.jobs % args.clients)
                      for i in range(args.clients)]
            deadline = time.monotonic() + args.timeout
            threads = [threading.Thread(target=client, args=(stack, keys[i], shares[i], i, tally,
                                                             deadline))
                       for i in range(args.clients)]
            load_start = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            load_seconds = time.monotonic() - load_start

            # Ground truth from the service itself: every accepted job, with its tenant's key.
            views = {}
            with httpx.Client(base_url=stack.url, timeout=30) as http:
                for job_id in tally.accepted:
                    r = http.get(f"/v1/jobs/{job_id}",
                                 headers={"Authorization": f"Bearer {tally.key_of[job_id]}"})
                    if r.status_code == 200:
                        views[job_id] = r.json()
            statuses = Counter(v["status"] for v in views.values())
            lost = [j for j in tally.accepted
                    if j not in views or not JobStatus(views[j]["status"]).is_terminal]
            finished = stack.finished_lines()
            duplicated = sorted({j for j, v in views.items() if v["attempts"] > 1}
                                | {j for j in tally.accepted if finished[j] > 1})
            counts = httpx.get(f"{stack.url}/metrics").text
            succeeded_counter = next((float(line.split()[-1]) for line in counts.splitlines()
                                      if line.startswith('nst_jobs{status="succeeded"}')), None)
            results = list((Path(tmp) / "data" / "store" / "results").rglob("*.png"))

            any_key = {"Authorization": f"Bearer {keys[0]}"}
            own = [j for j in views if tally.key_of[j] == keys[0]] or ["0" * 32]
            get_rps = burst(stack.url, lambda: f"/v1/jobs/{random.choice(own)}", any_key,
                            args.clients, args.burst_seconds)
            health_rps = burst(stack.url, lambda: "/healthz", {}, args.clients,
                               args.burst_seconds)
        finally:
            stack.stop()

    return {
        "command": "bench/load.py " + " ".join(sys.argv[1:]),
        "workers": args.workers, "jobs": args.jobs, "clients": args.clients,
        "cpus": os.cpu_count(),
        "startup_seconds": round(startup, 1),
        "load_seconds": round(load_seconds, 1),
        "accepted": len(tally.accepted),
        "rejected": dict(tally.rejected),
        "rejected_without_retry_after": tally.rejected_without_retry_after,
        "completed": statuses.get("succeeded", 0),
        "statuses": dict(statuses),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "finished_log_lines": sum(finished[j] for j in tally.accepted),
        "succeeded_counter": succeeded_counter,
        "result_files": len(results),
        "errors": {str(k): v for k, v in tally.errors.items()},
        "post_ms": {"n": len(tally.post_ms), "p50": percentile(tally.post_ms, 50),
                    "p99": percentile(tally.post_ms, 99)},
        "get_ms": {"n": len(tally.get_ms), "p50": percentile(tally.get_ms, 50),
                   "p99": percentile(tally.get_ms, 99)},
        "throughput_rps": {"get_job": round(get_rps, 1), "healthz": round(health_rps, 1),
                           "threads": args.clients, "seconds_each": args.burst_seconds},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (concurrency 1)")
    parser.add_argument("--jobs", type=int, default=40, help="jobs to submit in all")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--max-queue", type=int, default=16,
                        help="NST_MAX_QUEUE_DEPTH, low so that backpressure (503) shows")
    parser.add_argument("--max-active", type=int, default=10,
                        help="NST_MAX_ACTIVE_JOBS_PER_TENANT (each client is a tenant)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the job phase")
    parser.add_argument("--burst-seconds", type=float, default=5, help="each throughput phase")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if not (1 <= args.workers <= 8 and 1 <= args.jobs <= 2000 and 1 <= args.clients <= 64):
        parser.error("keep it small: 1-8 workers, 1-2000 jobs, 1-64 clients")
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if report["lost"] or report["duplicated"] else 0


if __name__ == "__main__":
    sys.exit(main())
