"""Histograms kept in Redis so that every worker process adds to the same figures.

Workers observe; the API's /metrics reads them (prometheus_client's own histograms are per process).
One hash per histogram; a field is `<label values as JSON>|<le>` or `<label values>|sum`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class Spec:
    """A histogram's help text, label names and bucket bounds (the +Inf bucket is implied)."""

    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]


HISTOGRAMS: dict[str, Spec] = {
    "job_run_seconds": Spec(
        "Run time of the attempt that finished a job, by outcome and preset (`custom` when "
        "scales or iterations were given).", ("outcome", "preset"),
        (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)),
    "job_queue_wait_seconds": Spec(
        "Time from submission to a job's first start.", (),
        (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)),
}


@dataclass(frozen=True)
class Series:
    """One label set of a histogram: (le, cumulative count) pairs and the sum."""

    labels: tuple[str, ...]
    buckets: list[tuple[str, int]]
    total: float


def observe(client: redis.Redis, prefix: str, name: str, value: float,
            labels: Sequence[str] = ()) -> None:
    """Add one observation to the named histogram (cumulative buckets, like Prometheus)."""
    spec = HISTOGRAMS[name]
    if len(labels) != len(spec.labels):
        raise ValueError(f"{name} takes labels {spec.labels}, got {tuple(labels)}")
    series = _series(labels)
    key = _key(prefix, name)
    pipe = client.pipeline(transaction=True)
    for bound in (*spec.buckets, math.inf):
        if value <= bound:
            pipe.hincrby(key, f"{series}|{_le(bound)}", 1)
    pipe.hincrbyfloat(key, f"{series}|sum", value)
    pipe.execute()


def read(client: redis.Redis, prefix: str, name: str) -> list[Series]:
    """Every label set observed so far (an unlabelled histogram always has its one series)."""
    spec = HISTOGRAMS[name]
    raw: dict[str, dict[str, str]] = {} if spec.labels else {_series(()): {}}
    for field, value in client.hgetall(_key(prefix, name)).items():  # the client decodes
        series, _, part = field.rpartition("|")
        raw.setdefault(series, {})[part] = value
    out = []
    for series, fields in sorted(raw.items()):
        labels = tuple(json.loads(series))
        if len(labels) != len(spec.labels):  # written with other label names: not this series
            continue
        buckets = [(_le(b), int(fields.get(_le(b), 0))) for b in (*spec.buckets, math.inf)]
        out.append(Series(labels, buckets, float(fields.get("sum", 0.0))))
    return out


def _key(prefix: str, name: str) -> str:
    # `hist2:`: the fields of the unlabelled `hist:` hashes before labels had no series part.
    return f"{prefix}hist2:{name}"


def _series(labels: Sequence[str]) -> str:
    return json.dumps(list(labels), separators=(",", ":"))


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))
