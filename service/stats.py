"""Histograms kept in Redis so that every worker process adds to the same figures.

Workers observe; the API's /metrics reads them (prometheus_client's own histograms are per process).
"""

from __future__ import annotations

import math

import redis

BUCKETS: dict[str, tuple[float, ...]] = {
    "job_run_seconds": (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    "job_queue_wait_seconds": (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
}


def observe(client: redis.Redis, prefix: str, name: str, value: float) -> None:
    """Add one observation to the named histogram (cumulative buckets, like Prometheus)."""
    key = f"{prefix}hist:{name}"
    pipe = client.pipeline(transaction=True)
    for bound in (*BUCKETS[name], math.inf):
        if value <= bound:
            pipe.hincrby(key, _label(bound), 1)
    pipe.hincrbyfloat(key, "sum", value)
    pipe.execute()


def read(client: redis.Redis, prefix: str, name: str) -> tuple[list[tuple[str, int]], float]:
    """The histogram's (le, cumulative count) pairs and its sum."""
    raw = client.hgetall(f"{prefix}hist:{name}")  # the client decodes replies
    buckets = [(_label(b), int(raw.get(_label(b), 0))) for b in (*BUCKETS[name], math.inf)]
    return buckets, float(raw.get("sum", 0.0))


def _label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))

