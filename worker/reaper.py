"""Reclaims jobs whose worker vanished: a running job whose lease expired is requeued or ended,
and a job queued for too long gets its message sent again (duplicates are no-ops).

Runs as a thread in every worker's main process (and once at start), so a fleet keeps working
even when a whole worker host dies; the broker alone would wait for its visibility timeout.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery

from service.jobstore import JobStore
from service.queue import enqueue
from service.results import ResultStore
from service.settings import Settings

log = logging.getLogger("nst.reaper")
SWEEP_INTERVAL = 3600.0  # seconds between sweeps of expired images


def reap_once(store: JobStore, settings: Settings, app: Celery) -> dict[str, str]:
    """One pass over expired leases; returns {job_id: outcome}."""
    outcomes: dict[str, str] = {}
    for job_id in store.stale_running():
        outcome = store.reap(
            job_id,
            max_attempts=settings.max_attempts,
            soft_time_limit=settings.task_soft_time_limit,
        )
        if outcome == "requeued":
            enqueue(app, settings.queue, job_id)
        if outcome != "alive":
            log.warning("reclaimed a job with an expired lease",
                        extra={"job_id": job_id, "outcome": outcome})
        outcomes[job_id] = outcome
    for job_id in store.unsent(settings.unsent_after_seconds):
        enqueue(app, settings.queue, job_id)
        store.mark_sent(job_id)
        log.warning("sent a job whose creator did not", extra={"job_id": job_id})
        outcomes[job_id] = "sent"
    for job_id in store.stale_queued(settings.requeue_after_seconds):
        enqueue(app, settings.queue, job_id)
        log.warning("re-sent a job queued for too long", extra={"job_id": job_id})
        outcomes[job_id] = "resent"
    return outcomes


class Reaper(threading.Thread):
    """Calls reap_once every NST_REAPER_INTERVAL_SECONDS, and sweeps old files hourly."""

    def __init__(self, store: JobStore, results: ResultStore, settings: Settings,
                 app: Celery) -> None:
        super().__init__(name="nst-reaper", daemon=True)
        self.store, self.results, self.settings, self.app = store, results, settings, app
        self._stop_event = threading.Event()
        self._next_sweep = 0.0

    def run(self) -> None:
        while True:
            try:
                reap_once(self.store, self.settings, self.app)
                self._sweep_when_due()
            except Exception:  # Redis down or restarting: try again next round
                log.warning("reaper pass failed", exc_info=True)
            if self._stop_event.wait(self.settings.reaper_interval_seconds):
                return

    def _sweep_when_due(self) -> None:
        # Job records expire in Redis by themselves; their images must be removed by someone.
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL
            removed = self.results.sweep(self.settings.job_ttl_seconds)
            if removed:
                log.info("removed expired images", extra={"files": removed})

    def stop(self) -> None:
        """Ask the thread to end after its current pass."""
        self._stop_event.set()
