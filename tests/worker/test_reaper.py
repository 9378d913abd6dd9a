"""The reaper in process: expired leases requeued or ended, stale queued jobs re-sent."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from service.contract import JobStatus
from service.jobstore import JobStore, new_job_id
from service.queue import TASK_NAME
from service.results import LocalStore
from service.settings import Settings
from worker.reaper import Reaper, reap_once


@dataclass
class Published:
    """Stands in for the Celery app: records what would be sent to the workers."""

    sent: list[str] = field(default_factory=list)

    def send_task(self, name: str, args: list, queue: str) -> None:
        assert name == TASK_NAME
        self.sent.extend(args)


def queued(store: JobStore) -> str:
    job = store.create(new_job_id(), "t", {}, {"content": "c", "styles": []}, ttl=600,
                       max_active=10, max_queue=10)
    assert job is not None
    return job.id


def test_an_expired_lease_is_requeued_and_resent(store: JobStore, settings: Settings) -> None:
    app = Published()
    job_id = queued(store)
    store.claim(job_id, lease_seconds=0.1, max_attempts=3)
    time.sleep(0.2)
    assert reap_once(store, settings, app) == {job_id: "requeued"}  # type: ignore[arg-type]
    assert app.sent == [job_id] and store.get(job_id).status == JobStatus.QUEUED


def test_a_live_lease_is_left_alone(store: JobStore, settings: Settings) -> None:
    job_id = queued(store)
    store.claim(job_id, lease_seconds=30, max_attempts=3)
    assert reap_once(store, settings, Published()) == {}  # type: ignore[arg-type]


def test_the_last_attempt_lost_ends_the_job(store: JobStore, settings: Settings) -> None:
    job_id = queued(store)
    store.claim(job_id, lease_seconds=0.1, max_attempts=1)
    time.sleep(0.2)
    one = settings.model_copy(update={"max_attempts": 1})
    assert reap_once(store, one, Published()) == {job_id: "exhausted"}  # type: ignore[arg-type]
    assert store.get(job_id).error_code == "attempts_exhausted"


def test_a_job_queued_too_long_is_resent_once(store: JobStore, settings: Settings) -> None:
    app = Published()
    job_id = queued(store)
    time.sleep(0.2)
    soon = settings.model_copy(update={"requeue_after_seconds": 0.1})
    assert reap_once(store, soon, app) == {job_id: "resent"}  # type: ignore[arg-type]
    assert reap_once(store, soon, app) == {}  # type: ignore[arg-type]
    assert app.sent == [job_id]


def test_the_reaper_thread_passes_and_sweeps(store: JobStore, results: LocalStore,
                                             settings: Settings) -> None:
    results.put("uploads/old/content.png", b"x")
    old = time.time() - 3600
    for path in ("uploads/old/content.png", "uploads/old", "uploads"):  # new folders are kept
        os.utime(results.root / path, (old, old))
    job_id = queued(store)
    store.claim(job_id, lease_seconds=0.05, max_attempts=3)
    time.sleep(0.1)
    fast = settings.model_copy(update={"reaper_interval_seconds": 0.05, "job_ttl_seconds": 60})
    reaper = Reaper(store, results, fast, Published())  # type: ignore[arg-type]
    reaper.start()
    time.sleep(0.3)
    reaper.stop()
    reaper.join(2)
    assert store.get(job_id).status == JobStatus.QUEUED
    assert not (results.root / "uploads").exists()  # swept, and its emptied folders


def test_a_job_whose_publish_failed_is_sent_by_the_reaper(store: JobStore,
                                                          settings: Settings) -> None:
    """Issue 11 #3: created, never published (publish failed, or the API died): sent promptly."""
    app = Published()
    job_id = queued(store)
    quick = settings.model_copy(update={"unsent_after_seconds": 0.1})
    time.sleep(0.2)
    assert reap_once(store, quick, app) == {job_id: "sent"}  # type: ignore[arg-type]
    assert app.sent == [job_id] and store.unsent(0) == []
    assert reap_once(store, quick, app) == {}  # type: ignore[arg-type]
