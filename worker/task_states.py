"""Celery's view of one delivery of a job, for Flower and `AsyncResult(task_id).state`.

The job store is the record of a job; the task state only mirrors how a delivery ended:
SUCCESS (it succeeded, or it had nothing to do: a duplicate, a lost lease, a job handed back),
FAILURE with JobFailed (it ended the job failed) and REVOKED (it ended the job canceled).
No torch here: the API process loads the backend class when it publishes.
"""

from __future__ import annotations

from typing import Any, NoReturn

from celery import Task
from celery.backends.redis import RedisBackend, SentinelBackend
from celery.exceptions import Ignore

from service.settings import Settings


class JobFailed(Exception):
    """Raised by the task after the job store recorded the failure: Celery marks it FAILURE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)  # the args Celery stores and rebuilds the exception from
        self.code, self.message = code, message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def revoked(task: Task, reason: str) -> NoReturn:
    """End the running delivery as REVOKED: in the result backend, and for Flower (an event)."""
    task.backend.mark_as_revoked(task.request.id, reason, request=task.request)
    task.send_event("task-revoked", terminated=False, signum=None, expired=False)
    raise Ignore()  # else Celery would record the task's return as SUCCESS over it


class _Unwatched:
    """Nobody waits on a task's result in-process: publishing must not subscribe to it.

    Redis backends subscribe each published task's result channel (to serve `.get()`), one
    pub/sub connection per publishing thread of the API; this backend only stores states.
    """

    def on_task_call(self, producer: Any, task_id: str) -> dict:
        return {}


class StateBackend(_Unwatched, RedisBackend):
    """Task states in the broker's Redis."""


class SentinelStateBackend(_Unwatched, SentinelBackend):
    """Task states in the Redis that the Sentinels name."""


def backend_url(settings: Settings) -> str:
    """`result_backend`: our backend class on the broker's Redis (Celery's `class+url` form)."""
    cls = SentinelStateBackend if settings.sentinels() else StateBackend
    return f"{cls.__module__}.{cls.__qualname__}+{settings.broker_url}"
