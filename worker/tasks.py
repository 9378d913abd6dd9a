"""The heavy side: the Celery task that runs one job through the engine (imports torch lazily).

A run: claim the job (new attempt token, lease), heartbeat the lease from a thread, stylize with a
progress callback (throttled writes, previews, cancel checks), store the result, finish.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from functools import lru_cache
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from pydantic import ValidationError

from nst_core.errors import Canceled, ImageError, InvalidParams
from nst_core.image import decode_image, encode_image
from nst_core.params import StyleParams
from nst_core.progress import Progress
from worker import connections, stats
from worker.celery_app import app
from worker.jobs import JobStore
from worker.logs import configure_logging, job_logging
from worker.queue import TASK_NAME
from worker.reaper import Reaper
from worker.settings import Settings, get_settings
from worker.storage import NotStored, ResultStore, preview_key, result_key

log = logging.getLogger("nst.worker")

PREVIEW_MIN_INTERVAL = 1.0  # seconds between stored previews: they are full images
# Redis restarting or briefly unreachable: a run goes on through it, its lease has slack.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


@lru_cache
def get_stylizer() -> Any:
    """The engine with VGG19 loaded: once per worker process, after the fork, on first use."""
    import torch

    from nst_core.transfer import Stylizer  # torch: only ever imported in pool processes

    settings = get_settings()
    # Pool processes that each use every core oversubscribe the CPU and slow down several-fold.
    concurrency = app.conf.worker_concurrency or 1
    torch.set_num_threads(settings.torch_threads or max(1, (os.cpu_count() or 1) // concurrency))
    return Stylizer(weights=settings.weights, device=settings.device)


class Heartbeat(threading.Thread):
    """Renews the job's lease while the engine runs, and notices cancel requests and lost leases."""

    def __init__(self, store: JobStore, job_id: str, token: str, settings: Settings) -> None:
        super().__init__(name=f"heartbeat-{job_id[:8]}", daemon=True)
        self.store, self.job_id, self.token, self.settings = store, job_id, token, settings
        self.verdict = "ok"
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.settings.heartbeat_seconds):
            try:
                verdict = self.store.touch(
                    self.job_id, self.token, lease_seconds=self.settings.lease_seconds
                )
            except Exception:  # a Redis blip: the lease has slack for a few missed beats
                log.warning("heartbeat failed", extra={"job_id": self.job_id}, exc_info=True)
                continue
            if verdict != "ok":
                self.verdict = verdict

    def stop(self) -> None:
        """End the thread (the lease then runs out unless the job finished)."""
        self._stop_event.set()


def progress_view(p: Progress) -> dict[str, Any]:
    """The JSON the job record keeps for a progress event (no image)."""
    return {
        "stage": p.stage,
        "scale": p.scale,
        "scales": p.scales,
        "size": list(p.size),
        "iteration": p.iteration,
        "iterations": p.iterations,
        "step": p.step,
        "total_steps": p.total_steps,
        "percent": round(p.percent, 2),
        "losses": {k: float(v) for k, v in p.losses.items()},
        "elapsed_seconds": round(p.elapsed, 3),
        "eta_seconds": None if p.eta is None else round(p.eta, 3),
    }


class ProgressReporter:
    """The engine's on_progress callback: writes throttled progress and previews, returns stop."""

    def __init__(self, store: JobStore, results: ResultStore, job_id: str, token: str,
                 settings: Settings, heartbeat: Heartbeat) -> None:
        self.store, self.results, self.job_id, self.token = store, results, job_id, token
        self.settings, self.heartbeat = settings, heartbeat
        self.last: dict[str, Any] | None = None
        self._last_write = self._last_preview = float("-inf")
        self._store_down = False

    @property
    def lost(self) -> bool:
        """Another attempt owns the job now (our lease expired): our output must be dropped."""
        return self.heartbeat.verdict == "lost"

    def __call__(self, p: Progress) -> bool:
        now = time.monotonic()
        self.last = progress_view(p)
        stored_preview = None
        if p.preview is not None and now - self._last_preview >= PREVIEW_MIN_INTERVAL:
            stored_preview = preview_key(self.job_id)
            self.results.put(stored_preview, encode_image(p.preview, "png"))
            self._last_preview = now
        try:
            if stored_preview or now - self._last_write >= self.settings.progress_interval_seconds:
                verdict = self.store.touch(
                    self.job_id, self.token, lease_seconds=self.settings.lease_seconds,
                    progress=self.last, preview_key=stored_preview,
                )
                self._last_write = now
            else:  # between writes, a cheap read keeps cancel within one iteration
                verdict = self.store.verdict(self.job_id, self.token)
        except REDIS_DOWN:  # keep computing; a lease lost meanwhile shows at the next check
            if not self._store_down:
                log.warning("job store unreachable; the run goes on", extra={"job_id": self.job_id},
                            exc_info=True)
            self._store_down = True
            return False
        self._store_down = False
        if verdict == "lost":
            self.heartbeat.verdict = "lost"
        return verdict != "ok"


def _load_inputs(job_inputs: dict[str, Any], results: ResultStore, max_pixels: int) -> tuple:
    content = decode_image(results.get(job_inputs["content"]), max_pixels=max_pixels)
    styles = [decode_image(results.get(k), max_pixels=max_pixels) for k in job_inputs["styles"]]
    return content, styles


def run(job_id: str) -> str:
    """Run one delivery of a job; returns the outcome (for logs and tests)."""
    settings = get_settings()
    store, results = connections.job_store(), connections.result_store()
    ctx = {"job_id": job_id}
    claim = store.claim(job_id, lease_seconds=settings.lease_seconds,
                        max_attempts=settings.max_attempts)
    if claim.outcome != "claimed":
        # A duplicate or late delivery, a canceled or an exhausted job: nothing to run.
        log.info("delivery not run", extra={**ctx, "outcome": claim.outcome})
        return claim.outcome
    if claim.queue_wait is not None:
        stats.observe(store.r, store.prefix, "job_queue_wait_seconds", claim.queue_wait)
    job = store.get(job_id)
    assert job is not None  # just claimed it
    log.info("job started", extra={**ctx, "attempt": job.attempts})

    heartbeat = Heartbeat(store, job_id, claim.token, settings)
    reporter = ProgressReporter(store, results, job_id, claim.token, settings, heartbeat)
    heartbeat.start()

    def finish(status: str, error: tuple[str, str] | None = None,
               result: tuple[str, str] | None = None) -> str:
        # Through a Redis restart, for as long as the lease would hold the job for us.
        deadline = time.monotonic() + settings.lease_seconds
        while True:
            try:
                seconds = store.finish(job_id, claim.token, status, error=error, result=result,
                                       progress=reporter.last)
                break
            except REDIS_DOWN:
                if time.monotonic() >= deadline:
                    raise
                log.warning("job store unreachable; finishing again", extra=ctx)
                time.sleep(0.5)
        if seconds is None:
            log.warning("lost the job before finishing", extra={**ctx, "status": status})
            return "lost"
        stats.observe(store.r, store.prefix, "job_run_seconds", seconds)
        log.info("job finished", extra={**ctx, "status": status, "run_seconds": round(seconds, 3),
                                        "error_code": error[0] if error else None})
        return status

    try:
        params = StyleParams.model_validate(job.params)
        content, styles = _load_inputs(job.inputs, results, settings.max_pixels)
        out = get_stylizer().stylize(content, styles, params, on_progress=reporter)
        data = encode_image(out.image, "png")
        key = result_key(job_id)
        results.put(key, data)
        if reporter.last:
            reporter.last.update(stage="done", percent=100.0, eta_seconds=0.0)
        return finish("succeeded", result=(key, hashlib.sha256(data).hexdigest()[:32]))
    except Canceled:
        if reporter.lost:
            log.warning("stopped: the lease went to another attempt", extra=ctx)
            return "lost"
        return finish("canceled")
    except SoftTimeLimitExceeded:
        return finish("failed", error=(
            "timeout", f"the job ran past its {settings.task_soft_time_limit} s time limit"))
    except (ImageError, InvalidParams, ValidationError, NotStored) as e:
        return finish("failed", error=("invalid_input", _message(e)))
    except Exception as e:
        log.exception("job crashed", extra=ctx)
        return finish("failed", error=("internal", f"{type(e).__name__}: {_message(e)}"[:500]))
    finally:
        heartbeat.stop()


def _message(e: Exception) -> str:
    return getattr(e, "message", None) or str(e) or type(e).__name__


@app.task(name=TASK_NAME)
def run_job(job_id: str) -> str:
    """The Celery entry point; the payload is the job id only."""
    with job_logging(job_id):
        return run(job_id)


# --- worker process lifecycle ---------------------------------------------------------------

_reaper: Reaper | None = None


@worker_process_init.connect
def _fresh_clients_after_fork(**_: Any) -> None:
    # Clients built in the parent (for the reaper) must not be shared with forked children.
    connections.redis_client.cache_clear()
    connections.job_store.cache_clear()
    connections.result_store.cache_clear()
    configure_logging(get_settings().log_level)


@worker_ready.connect
def _start_reaper(**_: Any) -> None:
    global _reaper
    _reaper = Reaper(connections.job_store(), connections.result_store(), get_settings(), app)
    _reaper.start()


@worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    if _reaper is not None:
        _reaper.stop()
