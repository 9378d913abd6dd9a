"""Prometheus metrics: HTTP latency of this process, and job figures read from Redis at scrape.

Job counts and histograms live in Redis (workers write them), so every API replica reports the
same fleet-wide numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from service import connections, stats

registry = CollectorRegistry()

HTTP_LATENCY = Histogram(
    "nst_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ["method", "route", "status"],
    registry=registry,
)

_HELP = {
    "job_run_seconds": "Run time of finished job attempts.",
    "job_queue_wait_seconds": "Time from submission to a job's first start.",
}


class JobCollector(Collector):
    """Reads jobs by status, queue depth and the job histograms from Redis on each scrape."""

    def collect(self) -> Iterator:
        up = GaugeMetricFamily("nst_store_up", "1 when the job store (Redis) answered the scrape.")
        try:
            store = connections.job_store()
            counts = store.status_counts()
            hists = {name: stats.read(store.r, store.prefix, name) for name in _HELP}
        except Exception:  # Redis down: say so instead of failing the scrape
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "nst_jobs", "Jobs queued or running now; totals for terminal statuses.",
            labels=["status"])
        for status, n in counts.items():
            jobs.add_metric([status], n)
        yield jobs
        depth = GaugeMetricFamily("nst_queue_depth", "Jobs waiting for a worker.")
        depth.add_metric([], counts["queued"])
        yield depth
        for name, (buckets, total) in hists.items():
            family = HistogramMetricFamily(f"nst_{name}", _HELP[name])
            family.add_metric([], buckets=buckets, sum_value=total)
            yield family


registry.register(JobCollector())


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one HTTP request's latency, labelled by route template (not raw path)."""
    HTTP_LATENCY.labels(method, route, str(status)).observe(seconds)
