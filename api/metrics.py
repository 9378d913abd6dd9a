"""Prometheus metrics: HTTP latency and process figures of this API process, and fleet-wide job
and worker figures read from Redis at scrape.

Job totals, histograms and worker heartbeats live in Redis (workers and the job store's scripts
write them), so every API replica reports the same fleet-wide numbers. docs/API.md lists them all.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from service import connections, stats, workers
from service.contract import TERMINAL, JobStatus

# The text format would serve each histogram's creation time as one more gauge family per label
# set (`..._created`): nothing reads it, and Prometheus derives resets from the counts.
disable_created_metrics()
registry = CollectorRegistry()
# Each API process reports its own memory, CPU, open files, GC and Python version.
ProcessCollector(registry=registry)
PlatformCollector(registry=registry)
GCCollector(registry=registry)

HTTP_LATENCY = Histogram(
    "nst_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ["method", "route", "status"],
    registry=registry,
)


class JobCollector(Collector):
    """Reads job counts and totals, the job histograms and worker heartbeats from Redis on each
    scrape."""

    def collect(self) -> Iterator:
        up = GaugeMetricFamily("nst_store_up", "1 when the job store (Redis) answered the scrape.")
        try:
            store = connections.job_store()
            counts, failures = store.status_counts(), store.failure_counts()
            fleet = workers.fleet(store.r, store.prefix)
            hists = {name: stats.read(store.r, store.prefix, name) for name in stats.HISTOGRAMS}
        except Exception:  # Redis down: say so instead of failing the scrape
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        now = GaugeMetricFamily("nst_jobs", "Jobs queued or running now.", labels=["status"])
        for status in (JobStatus.QUEUED, JobStatus.RUNNING):
            now.add_metric([status], counts[status])
        yield now
        depth = GaugeMetricFamily("nst_queue_depth", "Jobs waiting for a worker.")
        depth.add_metric([], counts[JobStatus.QUEUED])
        yield depth
        finished = CounterMetricFamily(
            "nst_jobs_finished", "Jobs that ended, by terminal status.", labels=["status"])
        for status in sorted(TERMINAL):
            finished.add_metric([status], counts[status])
        yield finished
        failed = CounterMetricFamily(
            "nst_job_failures", "Jobs that ended failed, by error code.", labels=["code"])
        for code, n in sorted(failures.items()):
            failed.add_metric([code], n)
        yield failed

        for name, value, help_ in (
            ("nst_workers_online", fleet.online, "Workers whose heartbeat is live."),
            ("nst_worker_slots", fleet.slots, "Pool processes of the live workers: jobs they "
                                              "can run at once."),
            ("nst_worker_slots_busy", fleet.busy, "Pool processes of the live workers running "
                                                  "a job now."),
        ):
            gauge = GaugeMetricFamily(name, help_)
            gauge.add_metric([], value)
            yield gauge

        for name, series in hists.items():
            spec = stats.HISTOGRAMS[name]
            family = HistogramMetricFamily(f"nst_{name}", spec.help, labels=list(spec.labels))
            for s in series:
                family.add_metric(list(s.labels), buckets=s.buckets, sum_value=s.total)
            yield family


registry.register(JobCollector())


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one HTTP request's latency, labelled by route template (not raw path)."""
    HTTP_LATENCY.labels(method, route, str(status)).observe(seconds)
