"""What WAIT costs: POST /v1/jobs latency with NST_REDIS_WAIT_REPLICAS=0 and =1, side by side.

    .venv/bin/python bench/redis_wait.py --requests 300

One run starts a Sentinel group (master, replica, three Sentinels) on loopback in a temporary
directory and two API processes on it, one without WAIT and one with WAIT 1 (no worker: each job
is canceled after its POST, untimed). One client alternates its requests between the two, so both
see the same machine load. Then the job store's create and finish are timed in this process the
same way, without the HTTP and image work around them. Prints p50/p90/p99/mean ms per side.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image

from cli.redis_servers import SentinelGroup
from cli.stack import ServiceStack
from service.jobstore import JobStore, new_job_id

TINY = {"size": 32, "scales": [32], "iterations": [2], "optimizer": "adam", "preview_every": 0}
WARMUP = 10  # requests per side left out of the figures (connections, script loading)


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def start_apis(group: SentinelGroup, tmp: Path, timeout_ms: int) -> list[ServiceStack]:
    """Two API processes on the group, on one store: WAIT 0 and WAIT 1."""
    stacks = []
    for replicas in (0, 1):
        log_dir = tmp / f"api-wait-{replicas}"
        log_dir.mkdir()
        stack = ServiceStack({
            **os.environ, **group.env(), "NST_DATA_DIR": str(tmp / "data"), "NST_OPEN_MODE": "true",
            "NST_MAX_QUEUE_DEPTH": "1000000",
            "NST_REDIS_WAIT_REPLICAS": str(replicas), "NST_REDIS_WAIT_TIMEOUT_MS": str(timeout_ms),
            "NST_LOG_LEVEL": "WARNING"}, log_dir=log_dir)
        stack.start_api(ready="/readyz")
        stacks.append(stack)
    return stacks


def alternate(calls: list[Callable[[], float]], n: int) -> list[list[float]]:
    """Call each of `calls` in turn, n times each (after WARMUP rounds); their milliseconds."""
    times: list[list[float]] = [[] for _ in calls]
    for i in range(n + WARMUP):
        for side, call in enumerate(calls):
            ms = call()
            if i >= WARMUP:
                times[side].append(ms)
    return times


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """`fn` as a call that returns its own milliseconds."""
    def call() -> float:
        start = time.perf_counter()
        fn()
        return 1000 * (time.perf_counter() - start)
    return call


def row(name: str, ms: list[float]) -> str:
    """One table row: n, p50, p90, p99, mean (ms)."""
    q = statistics.quantiles(ms, n=100)
    return (f"| {name} | {len(ms)} | {q[49]:.2f} | {q[89]:.2f} | {q[98]:.2f} | "
            f"{statistics.fmean(ms):.2f} |")


def post_call(url: str, content: bytes, style: bytes) -> Callable[[], float]:
    """One POST /v1/jobs to the API at `url`, timed; then the job is canceled (untimed), so the
    tenant's active set, which a create walks, stays as small as in a real deployment."""
    http = httpx.Client(base_url=url, timeout=30)
    files = [("content", ("c.png", content)), ("style", ("s.png", style))]

    def call() -> float:
        start = time.perf_counter()
        r = http.post("/v1/jobs", files=files, data={"params": json.dumps(TINY)})
        ms = 1000 * (time.perf_counter() - start)
        assert r.status_code == 202, r.text
        http.post(f"/v1/jobs/{r.json()['id']}/cancel").raise_for_status()
        return ms

    return call


def create_call(store: JobStore) -> Callable[[], float]:
    """One job store create (a tenant of its own: nothing else active), timed."""
    def create() -> None:
        job_id = new_job_id()
        store.create(job_id, job_id, TINY, {}, ttl=600, max_active=10, max_queue=10**9)
    return timed(create)


def finish_call(store: JobStore) -> Callable[[], float]:
    """One finish of a freshly created and claimed job; only the finish is timed."""
    def call() -> float:
        job_id = new_job_id()
        store.create(job_id, job_id, TINY, {}, ttl=600, max_active=10, max_queue=10**9)
        token = store.claim(job_id, lease_seconds=60, max_attempts=3).token
        return timed(lambda: store.finish(job_id, token, "succeeded", result=("k", "e")))()
    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="timed POSTs per side")
    parser.add_argument("--store-calls", type=int, default=1000, help="timed store calls per side")
    parser.add_argument("--timeout-ms", type=int, default=500, help="NST_REDIS_WAIT_TIMEOUT_MS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nst-wait-") as tmp:
        group = SentinelGroup(Path(tmp) / "redis").start()
        stacks: list[ServiceStack] = []
        try:
            stacks = start_apis(group, Path(tmp), args.timeout_ms)
            content, style = _png((48, 32)), _png((32, 32))
            posts = alternate([post_call(s.url, content, style) for s in stacks], args.requests)
            stores = [JobStore(group.client(), prefix="bench:", wait_replicas=w,
                               wait_timeout_ms=args.timeout_ms) for w in (0, 1)]
            creates = alternate([create_call(s) for s in stores], args.store_calls)
            finishes = alternate([finish_call(s) for s in stores], args.store_calls)
            acked = group.master.info()["connected_slaves"]
        finally:
            for stack in stacks:
                stack.stop()
            group.stop()
    print(f"replicas connected to the master: {acked}; WAIT timeout {args.timeout_ms} ms")
    print("| call | n | p50 ms | p90 ms | p99 ms | mean ms |\n|---|---:|---:|---:|---:|---:|")
    for name, (off, on) in (("POST /v1/jobs", posts), ("JobStore.create", creates),
                            ("JobStore.finish", finishes)):
        print(row(f"{name}, no WAIT", off))
        print(row(f"{name}, WAIT 1", on))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
