"""The worker's attempt object on a real job store (Redis on 6379) and the real engine at 32 px."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import pytest
import redis
from PIL import Image

from service.contract import JobProgress, JobStatus
from service.jobstore import JobStore, new_job_id
from service.results import LocalStore, upload_key
from service.settings import Settings
from worker.attempt import Attempt, Ending, Lease

TINY = {"size": 32, "scales": [32], "iterations": [3], "optimizer": "adam", "preview_every": 1}


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((40, 32), 30 + seed).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def submit(store: JobStore, results: LocalStore, params: dict[str, Any] | None = None,
           *, content: bytes | None = None) -> str:
    """Store inputs and record a queued job, as the API does."""
    job_id = new_job_id()
    inputs = {"content": upload_key(job_id, "content"), "styles": [upload_key(job_id, "style-0")]}
    results.put(inputs["content"], png(0) if content is None else content)
    results.put(inputs["styles"][0], png(1))
    store.create(job_id, "t", {**TINY, **(params or {})}, inputs, ttl=600, max_active=10,
                 max_queue=10)
    return job_id


def served(store: JobStore, results: LocalStore, job_id: str) -> tuple[bytes, str]:
    """What GET /result would serve: the recorded key's bytes, and the recorded etag."""
    job = store.get(job_id)
    assert job is not None and job.result_key and job.result_etag
    return results.get(job.result_key), job.result_etag


def test_an_attempt_runs_a_job_to_success(store, results, settings, engine) -> None:
    job_id = submit(store, results)
    assert Attempt(job_id, store, results, settings, engine).run() == JobStatus.SUCCEEDED
    job = store.get(job_id)
    assert job.status == JobStatus.SUCCEEDED and job.progress.stage == "done"
    assert job.progress.percent == 100.0 and job.progress.eta_seconds == 0.0
    data, etag = served(store, results, job_id)
    assert hashlib.sha256(data).hexdigest()[:32] == etag
    assert job.preview_key and results.get(job.preview_key)


def test_the_last_preview_is_recorded_when_the_run_ends_between_two_lease_writes(
        store, results, settings, engine) -> None:
    """Found by the chaos soak: a run that ended before the lease thread's next write left its
    last preview named nowhere (an orphan file; GET /preview said the job stored none)."""
    slow = settings.model_copy(update={"progress_interval_seconds": 30})  # no write mid-run
    job_id = submit(store, results)
    assert Attempt(job_id, store, results, slow, engine).run() == JobStatus.SUCCEEDED
    job = store.get(job_id)
    stored = list((results.root / "previews" / job_id).iterdir())
    assert job.preview_key and stored == [results.root / job.preview_key]


def test_preview_every_zero_stores_no_preview_at_all(store, results, settings, engine) -> None:
    job_id = submit(store, results, {"preview_every": 0})
    Attempt(job_id, store, results, settings, engine).run()
    job = store.get(job_id)
    assert job.status == JobStatus.SUCCEEDED and job.preview_key is None
    assert not (results.root / "previews").exists()


def test_a_duplicate_delivery_does_not_run(store, results, settings, engine) -> None:
    job_id = submit(store, results)
    assert Attempt(job_id, store, results, settings, engine).run() == JobStatus.SUCCEEDED
    assert Attempt(job_id, store, results, settings, engine).run() == "done"


def test_a_missing_input_is_retried_then_fails_as_internal(store, results, settings,
                                                           engine) -> None:
    """Issue 11 #5: the store, not the user: each attempt hands the job back (sent again by the
    reaper); the last one fails it `internal`, never `invalid_input`."""
    job_id = submit(store, results)
    results.delete(upload_key(job_id, "style-0"))
    two = settings.model_copy(update={"max_attempts": 2})
    assert Attempt(job_id, store, results, two, engine).run() == "requeued"
    job = store.get(job_id)
    assert job.status == JobStatus.QUEUED and job.attempts == 1 and job.error_code is None
    assert store.unsent(0) == [job_id]  # the next reaper pass publishes it again
    assert Attempt(job_id, store, results, two, engine).run() == "failed"
    job = store.get(job_id)
    assert job.status == JobStatus.FAILED and job.error_code == "internal"
    assert "missing from the result store" in job.error_message and "style-0" in job.error_message


def test_a_corrupt_input_fails_the_job_as_invalid_input(store, results, settings, engine) -> None:
    """Issue 11 #10: the invalid_input branch ends `failed` (not `succeeded`), with the reason."""
    job_id = submit(store, results, content=b"not an image")
    assert Attempt(job_id, store, results, settings, engine).run() == JobStatus.FAILED
    job = store.get(job_id)
    assert job.status == JobStatus.FAILED and job.error_code == "invalid_input"
    assert job.error_message and job.result_key is None and job.finished_at
    assert store.status_counts()["failed"] == 1 and store.status_counts()["succeeded"] == 0


def test_bad_params_in_the_record_fail_the_job_as_invalid_input(store, results, settings,
                                                               engine) -> None:
    job_id = submit(store, results, {"iterations": [-1]})
    assert Attempt(job_id, store, results, settings, engine).run() == JobStatus.FAILED
    job = store.get(job_id)
    assert job.status == JobStatus.FAILED and job.error_code == "invalid_input"
    assert "iterations" in job.error_message


def test_an_engine_crash_fails_the_job_as_internal(store, results, settings) -> None:
    class Broken:
        def stylize(self, *args: Any, **kw: Any) -> None:
            raise RuntimeError("boom")

    job_id = submit(store, results)
    assert Attempt(job_id, store, results, settings, Broken()).run() == JobStatus.FAILED
    job = store.get(job_id)
    assert job.status == JobStatus.FAILED and job.result_key is None  # issue 11 #10: not succeeded
    assert job.error_code == "internal" and "RuntimeError: boom" in job.error_message
    assert store.status_counts()["failed"] == 1 and store.status_counts()["succeeded"] == 0


def test_a_lease_write_renews_by_the_configured_lease(store, results, settings) -> None:
    """Issue 11 #10: the heartbeat must renew for NST_LEASE_SECONDS, not 0 s."""
    job_id = submit(store, results)
    claim = store.claim(job_id, lease_seconds=0.1, max_attempts=3)
    Lease(store, job_id, claim.token, settings.model_copy(update={"lease_seconds": 20})).write()
    now_s, now_us = store.r.time()
    lease = float(store.r.hget(f"{store.prefix}job:{job_id}", "lease_until"))
    assert 19 < lease - (now_s + now_us / 1e6) <= 20


def test_a_cancel_request_stops_the_run(store, results, settings, engine) -> None:
    job_id = submit(store, results, {"iterations": [200]})

    class CancelFirst:
        def stylize(self, content, styles, params, on_progress=None):
            store.cancel(job_id)  # running: flagged; the next progress check stops the engine
            return engine.stylize(content, styles, params, on_progress=on_progress)

    assert Attempt(job_id, store, results, settings, CancelFirst()).run() == JobStatus.CANCELED
    assert store.get(job_id).status == JobStatus.CANCELED


def test_a_late_attempt_never_changes_the_served_result(store, results, settings, engine) -> None:
    """Issue 11 #1: attempt A loses its lease after its engine ran and before its put; attempt B
    runs the job to success; A then stores and finishes. GET must still serve B's bytes under
    B's etag, and A's file must be gone."""
    job_id = submit(store, results)
    seen: dict[str, Any] = {}

    class PausedAfterEngine:
        def stylize(self, content, styles, params, on_progress=None):
            out = engine.stylize(content, styles, params.model_copy(update={"seed": 99}))
            # A stalls here (SIGSTOP in the field): its lease runs out and B runs the job.
            store.r.hset(f"{store.prefix}job:{job_id}", "lease_until", 0)
            assert store.reap(job_id, max_attempts=3, soft_time_limit=600) == "requeued"
            b = Attempt(job_id, store, results, settings, engine)
            assert b.run() == JobStatus.SUCCEEDED
            seen["b"] = served(store, results, job_id)
            return out

    a = Attempt(job_id, store, results, settings, PausedAfterEngine())
    assert a.run() == "lost"
    data, etag = served(store, results, job_id)
    assert (data, etag) == seen["b"]
    assert hashlib.sha256(data).hexdigest()[:32] == etag
    assert a.files and not any((results.root / k).exists() for k in a.files)  # A's files: gone


class FinishDown:
    """A job store whose finish hits a Redis that is down until the attempt gives up."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def finish(self, job_id: str, token: str, status: str, **kw: Any) -> float | None:
        if status == JobStatus.SUCCEEDED:
            raise redis.ConnectionError("redis is restarting")
        return self._store.finish(job_id, token, status, **kw)


def test_a_stored_result_is_never_marked_failed(store, results, settings: Settings,
                                                engine) -> None:
    """Issue 11 #2: finish's Redis-down retries run out after the result was stored. The error
    goes up (the reaper will decide); the job is not finished `failed` with `internal`."""
    job_id = submit(store, results)
    quick = settings.model_copy(update={"lease_seconds": 0.6})
    with pytest.raises(redis.ConnectionError):
        Attempt(job_id, FinishDown(store), results, quick, engine).run()  # type: ignore[arg-type]
    job = store.get(job_id)
    assert job.status == JobStatus.RUNNING and job.error_code is None


def test_finish_by_a_lost_attempt_drops_its_files(store, results, settings, engine) -> None:
    job_id = submit(store, results)
    a = Attempt(job_id, store, results, settings, engine)
    a.claim()
    key, _ = a.store_result(Image.new("RGB", (8, 8)))
    store.r.hset(f"{store.prefix}job:{job_id}", "attempt_token", "someone-else")
    assert a.finish(Ending(JobStatus.SUCCEEDED, result=(key, "x"))) == "lost"
    assert not (results.root / key).exists()


def test_the_lease_is_the_one_writer_and_throttles(store, results, settings) -> None:
    job_id = submit(store, results)
    claim = store.claim(job_id, lease_seconds=30, max_attempts=3)
    writes: list[Any] = []
    touch = store.touch
    store.touch = lambda *a, **kw: writes.append(kw.get("progress")) or touch(*a, **kw)
    lease = Lease(store, job_id, claim.token, settings)
    lease.start()
    progress = JobProgress(stage="optimize", scale=1, scales=1, size=[32, 32], iteration=1,
                           iterations=9, step=1, total_steps=9, percent=11.1, losses={},
                           elapsed_seconds=0.1, eta_seconds=1.0)
    for step in range(1, 50):  # many events between two writes: only the latest is written
        lease.report(progress.model_copy(update={"step": step}))
    time.sleep(0.3)
    assert 1 <= len(writes) <= 3 and writes[-1].step == 49
    assert store.get(job_id).progress.step == 49
    store.cancel(job_id)
    assert lease.check() == "cancel"
    lease.stop()
