"""One delivery of a job to this worker: claim -> load inputs -> stylize -> store -> finish.

The attempt's files are named by its token, and only the atomic finish (which checks that the
attempt still owns the job) records them; an attempt that lost the job deletes its own files.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image
from pydantic import ValidationError

from nst_core.errors import Canceled, ImageError, InvalidParams
from nst_core.image import decode_image, encode_image
from nst_core.params import PRESETS, StyleParams
from nst_core.progress import Progress, Result
from service import stats
from service.contract import JobProgress, JobStatus
from service.error_codes import JobErrorCode
from service.jobstore import Job, JobStore
from service.results import NotStored, ResultStore, preview_key, result_key
from service.settings import Settings

log = logging.getLogger("nst.worker")

PREVIEW_MIN_INTERVAL = 1.0  # seconds between stored previews: they are full images
# Redis restarting or briefly unreachable: a run goes on through it, its lease has slack.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class Engine(Protocol):
    """What an attempt needs of nst_core's Stylizer."""

    def stylize(self, content: Image.Image, styles: list[Image.Image], params: StyleParams,
                on_progress: Any = None) -> Result: ...


@dataclass(frozen=True)
class Ending:
    """How the attempt ends: a terminal status, with an error or a stored result; `queued` hands
    the job back to be retried (its error is the job's if no attempt is left)."""

    status: JobStatus
    error: tuple[str, str] | None = None  # (code, message)
    result: tuple[str, str] | None = None  # (store key, etag)


class Lease(threading.Thread):
    """The attempt's one writer to the job record: renews the lease and writes the latest progress
    and preview key; the engine's callback only records them and reads the cancel flag."""

    def __init__(self, store: JobStore, job_id: str, token: str, settings: Settings) -> None:
        super().__init__(name=f"lease-{job_id[:8]}", daemon=True)
        self.store, self.job_id, self.token, self.settings = store, job_id, token, settings
        self.verdict = "ok"  # ok | cancel | lost: the last answer of the store
        self.progress: JobProgress | None = None
        self.preview: str | None = None
        self._dirty = False
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._store_down = False

    def report(self, progress: JobProgress, preview: str | None = None) -> None:
        """Record the latest progress (and a newly stored preview) for the next write."""
        with self._lock:
            self.progress, self._dirty = progress, True
            self.preview = preview or self.preview

    def run(self) -> None:
        last_write = time.monotonic()
        tick = max(self.settings.progress_interval_seconds, 0.05)
        while not self._stop_event.wait(tick):
            due = time.monotonic() - last_write >= self.settings.heartbeat_seconds
            if self._dirty or due:
                self.write()
                last_write = time.monotonic()

    def write(self) -> None:
        """Renew the lease with the latest progress; a Redis blip is survived (the lease has slack)."""
        with self._lock:
            progress, preview, self._dirty = self.progress, self.preview, False
        try:
            verdict = self.store.touch(self.job_id, self.token, progress=progress,
                                       preview_key=preview,
                                       lease_seconds=self.settings.lease_seconds)
        except Exception:  # Redis down or loading its AOF: the lease has slack for a few misses
            self._warn_down()
            return
        self._store_down = False
        self.verdict = "lost" if self.verdict == "lost" else verdict

    def check(self) -> str:
        """The cheap per-iteration read (no write): `ok`, `cancel` or `lost`."""
        try:
            verdict = self.store.verdict(self.job_id, self.token)
        except REDIS_DOWN:  # keep computing; a lease lost meanwhile shows at the next check
            self._warn_down()
            return "ok"
        self._store_down = False
        if verdict == "lost":
            self.verdict = "lost"
        return verdict

    def _warn_down(self) -> None:
        if not self._store_down:
            log.warning("job store unreachable; the run goes on", extra={"job_id": self.job_id},
                        exc_info=True)
        self._store_down = True

    def stop(self) -> None:
        """End the thread, wait for a write in flight, then write what it had not written yet:
        a run may end between two writes, and its last preview must be named (the finish
        comes after this)."""
        self._stop_event.set()
        if self.is_alive():
            self.join()
        if self._dirty:
            self.write()


class Attempt:
    """One delivery of one job; `run()` returns the outcome (for logs and tests)."""

    def __init__(self, job_id: str, store: JobStore, results: ResultStore, settings: Settings,
                 engine: Engine) -> None:
        self.job_id, self.store, self.results, self.settings = job_id, store, results, settings
        self.engine = engine
        self.token, self.outcome, self.preset = "", "", ""
        self.lease: Lease | None = None
        self.files: list[str] = []  # what this attempt stored: deleted if it loses the job
        self._last_preview = float("-inf")
        self.callback_seconds = 0.0  # time spent in the engine's progress callback
        self._previews = False
        self.ctx = {"job_id": job_id}

    def run(self) -> str:
        """Claim, work, finish. Finishing is outside the work's error handling on purpose."""
        job = self.claim()
        if job is None:
            return self.outcome
        self.lease = Lease(self.store, self.job_id, self.token, self.settings)
        self.lease.start()
        try:
            ending = self.work(job)
        finally:
            self.lease.stop()
        if ending is None:
            log.warning("stopped: the lease went to another attempt", extra=self.ctx)
            return self.drop()
        return self.finish(ending)

    def claim(self) -> Job | None:
        """Take the job (new token, lease); None for a duplicate, late, canceled or spent one."""
        claim = self.store.claim(self.job_id, lease_seconds=self.settings.lease_seconds,
                                 max_attempts=self.settings.max_attempts)
        self.outcome = claim.outcome
        if claim.outcome != "claimed":
            log.info("delivery not run", extra={**self.ctx, "outcome": claim.outcome})
            return None
        self.token = claim.token
        if claim.queue_wait is not None:
            stats.observe(self.store.r, self.store.prefix, "job_queue_wait_seconds",
                          claim.queue_wait)
        job = self.store.get(self.job_id)
        if job is not None:
            self.preset = preset_label(job.params)
            log.info("job started", extra={**self.ctx, "attempt": job.attempts})
        return job

    def work(self, job: Job) -> Ending | None:
        """Load inputs, stylize, store the result; the ending, or None when the job was lost."""
        try:
            params = StyleParams.model_validate(job.params)
            self._previews = params.preview_every > 0
            content, styles = self.load_inputs(job.inputs)
            out = self.engine.stylize(content, styles, params, on_progress=self.on_progress)
            return Ending(JobStatus.SUCCEEDED, result=self.store_result(out.image))
        except Canceled:
            return None if self.lost else Ending(JobStatus.CANCELED)
        except SoftTimeLimitExceeded:
            limit = self.settings.task_soft_time_limit
            return Ending(JobStatus.FAILED, error=(
                JobErrorCode.TIMEOUT, f"the job ran past its {limit} s time limit"))
        except NotStored as e:  # the store, not the user: another attempt may see it
            return Ending(JobStatus.QUEUED, error=(
                JobErrorCode.INTERNAL, f"an input image is missing from the result store: {e}"))
        except (ImageError, InvalidParams, ValidationError) as e:
            return Ending(JobStatus.FAILED, error=(JobErrorCode.INVALID_INPUT, _message(e)))
        except Exception as e:
            log.exception("job crashed", extra=self.ctx)
            return Ending(JobStatus.FAILED, error=(
                JobErrorCode.INTERNAL, f"{type(e).__name__}: {_message(e)}"[:500]))

    @property
    def lost(self) -> bool:
        """Another attempt owns the job now (our lease expired): our output must be dropped."""
        return self.lease is not None and self.lease.verdict == "lost"

    def load_inputs(self, inputs: dict[str, Any]) -> tuple[Image.Image, list[Image.Image]]:
        """The content and style images the API stored."""
        def load(key: str) -> Image.Image:
            return decode_image(self.results.get(key), max_pixels=self.settings.max_pixels)

        return load(inputs["content"]), [load(k) for k in inputs["styles"]]

    def on_progress(self, p: Progress) -> bool:
        """The engine's callback: record progress, store a preview now and then; True stops."""
        assert self.lease is not None
        t0 = time.perf_counter()
        self.lease.report(JobProgress.from_engine(p), self._store_preview(p.preview))
        stop = self.lease.check() != "ok"
        self.callback_seconds += time.perf_counter() - t0  # part of the service's own cost
        return stop

    def _store_preview(self, image: Image.Image | None) -> str | None:
        # preview_every=0 means none at all (the engine's done event carries the image anyway).
        now = time.monotonic()
        if image is None or not self._previews or now - self._last_preview < PREVIEW_MIN_INTERVAL:
            return None
        key = preview_key(self.job_id, self.token)
        self._put(key, encode_image(image, "png"))
        self._last_preview = now
        return key

    def store_result(self, image: Image.Image) -> tuple[str, str]:
        """Store the result under this attempt's key; returns (key, etag of those bytes)."""
        data = encode_image(image, "png")
        key = result_key(self.job_id, self.token)
        self._put(key, data)
        return key, hashlib.sha256(data).hexdigest()[:32]

    def _put(self, key: str, data: bytes) -> None:
        if key not in self.files:
            self.files.append(key)
        self.results.put(key, data)

    def finish(self, ending: Ending) -> str:
        """Record the ending if this attempt still owns the job; else drop its files."""
        if ending.status == JobStatus.QUEUED:
            return self.release(ending)
        seconds = self._finish_through_outage(ending)
        if seconds is None:
            log.warning("lost the job before finishing", extra={**self.ctx, "status": ending.status})
            return self.drop()
        stats.observe(self.store.r, self.store.prefix, "job_run_seconds", seconds,
                      (ending.status, self.preset))
        log.info("job finished", extra={**self.ctx, "status": ending.status,
                                        "run_seconds": round(seconds, 3),
                                        "callback_seconds": round(self.callback_seconds, 4),
                                        "error_code": ending.error[0] if ending.error else None})
        return ending.status

    def release(self, ending: Ending) -> str:
        """Hand the job back for another attempt (or fail it when none is left)."""
        assert ending.error is not None
        outcome = self.store.release(self.job_id, self.token, error=ending.error,
                                     max_attempts=self.settings.max_attempts)
        log.warning("attempt handed back", extra={**self.ctx, "outcome": outcome,
                                                   "error_code": ending.error[0]})
        if outcome == "failed":
            log.info("job finished", extra={**self.ctx, "status": JobStatus.FAILED,
                                            "error_code": ending.error[0]})
        self.drop()
        return outcome

    def _finish_through_outage(self, ending: Ending) -> float | None:
        # Through a Redis restart, for as long as the lease would hold the job for us; past that
        # the error propagates and the reaper decides (a stored result is never marked failed).
        deadline = time.monotonic() + self.settings.lease_seconds
        progress = self.lease.progress if self.lease else None
        while True:
            try:
                return self.store.finish(self.job_id, self.token, ending.status,
                                         error=ending.error, result=ending.result,
                                         progress=progress)
            except REDIS_DOWN:
                if time.monotonic() >= deadline:
                    raise
                log.warning("job store unreachable; finishing again", extra=self.ctx)
                time.sleep(0.5)

    def drop(self) -> str:
        """Delete what this attempt stored: another attempt's result is the job's."""
        for key in self.files:
            self.results.delete(key)
        return "lost"


def preset_label(params: dict[str, Any]) -> str:
    """The job's preset for metrics: `custom` when it set its own schedule (or an unknown one)."""
    preset = params.get("preset", StyleParams.model_fields["preset"].default)
    custom = params.get("scales") or params.get("iterations") or preset not in PRESETS
    return "custom" if custom else preset


def _message(e: Exception) -> str:
    return getattr(e, "message", None) or str(e) or type(e).__name__
