"""The worker's heartbeat: a thread in its main process that writes service/workers.py's key.

The main process knows which of its pool processes run a job (Celery's active requests), so one
writer per worker suffices; a hung pool process still counts as busy, which it is.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import redis
from celery.worker import state as worker_state

from service import workers

log = logging.getLogger("nst.worker")
INTERVAL = 5.0  # seconds between beats
TTL = 3 * INTERVAL  # a worker missing two beats in a row counts as gone


class Heartbeat(threading.Thread):
    """Writes the worker's heartbeat every INTERVAL until stopped, then removes it."""

    def __init__(self, client: redis.Redis, prefix: str, node: str, slots: int) -> None:
        super().__init__(name="nst-heartbeat", daemon=True)
        self.client, self.prefix, self.node, self.slots = client, prefix, node, slots
        self._stop_event = threading.Event()
        self._down = False

    def run(self) -> None:
        while True:
            try:
                workers.beat(self.client, self.prefix, self.node, ttl=TTL, slots=self.slots,
                             busy=len(worker_state.active_requests))
                self._down = False
            except redis.RedisError:  # Redis restarting: beat again next round
                if not self._down:
                    log.warning("heartbeat not written: Redis unreachable")
                self._down = True
            if self._stop_event.wait(INTERVAL):
                return

    def stop(self) -> None:
        """End the thread and say this worker is gone."""
        self._stop_event.set()
        self.join(timeout=5)
        with contextlib.suppress(redis.RedisError):  # else its key expires by itself
            workers.leave(self.client, self.prefix, self.node)
