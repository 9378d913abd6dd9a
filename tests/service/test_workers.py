"""Worker heartbeats: live ones are counted with their slots, stopped and silent ones are not."""

from __future__ import annotations

import time

from service import workers
from service.jobstore import JobStore


def test_live_workers_are_counted_and_silent_ones_leave(store: JobStore) -> None:
    r, prefix = store.r, store.prefix
    assert workers.fleet(r, prefix) == workers.Fleet(online=0, slots=0, busy=0)
    workers.beat(r, prefix, "nst-1@a", busy=1, slots=2, ttl=30)
    workers.beat(r, prefix, "nst-1@b", busy=1, slots=1, ttl=30)
    workers.beat(r, prefix, "nst-1@c", busy=0, slots=4, ttl=0.2)
    assert workers.fleet(r, prefix) == workers.Fleet(online=3, slots=7, busy=2)
    workers.beat(r, prefix, "nst-1@a", busy=0, slots=2, ttl=30)  # a beat replaces the last one
    workers.leave(r, prefix, "nst-1@b")
    time.sleep(0.3)  # c missed its beat
    assert workers.fleet(r, prefix) == workers.Fleet(online=1, slots=2, busy=0)
    assert r.smembers(f"{prefix}workers") == {"nst-1@a"}
