"""Celery task states of a stack the two ways operators see them: Flower's (the workers' events,
folded by Celery's own events.State, as Flower does) and the result backend's (AsyncResult)."""

from __future__ import annotations

import threading

from celery import states
from celery.events.state import State, Task
from celery.result import AsyncResult

from cli.stack import wait_until
from service.settings import Settings
from worker.celery_app import create_celery_app


class TaskWatch:
    """Listens to a stack's worker events from `start()` on (start it before the workers)."""

    def __init__(self, redis_url: str) -> None:
        self.app = create_celery_app(Settings(redis_url=redis_url))
        self.state = State()
        self._receiver = None
        self._thread = threading.Thread(target=self._listen, name="task-watch", daemon=True)
        self._listening = threading.Event()

    def _listen(self) -> None:
        with self.app.connection_for_read() as conn:
            self._receiver = self.app.events.Receiver(conn, handlers={"*": self.state.event})
            self._listening.set()
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self) -> TaskWatch:
        """Start listening; returns once the receiver is connected."""
        self._thread.start()
        assert self._listening.wait(10), "the event receiver did not connect"
        return self

    def stop(self) -> None:
        """Stop listening (the receiver checks every second)."""
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=5)

    def task_of(self, job_id: str, timeout: float = 30) -> Task:
        """The one delivery of the job, once Flower would show it ended."""
        def ended() -> Task | None:
            found = [t for t in list(self.state.tasks.values()) if job_id in (t.args or "")]
            assert len(found) <= 1, found
            return found[0] if found and found[0].state in states.READY_STATES else None

        wait_until(ended, timeout)
        return ended()

    def result(self, task_id: str) -> AsyncResult:
        """The task as the result backend has it."""
        return AsyncResult(task_id, app=self.app)
