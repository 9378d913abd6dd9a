"""Fault 3: Redis is SIGKILLed and started again on its AOF while jobs are queued and running."""

from __future__ import annotations

import time

import httpx
import pytest

from cli.redis_servers import RedisServer
from client import NstApiError
from tests.support.fault import FaultStack, assert_invariant, wait_running
from tests.support.stack import CONTENT, STYLE, TINY, long_params

pytestmark = pytest.mark.fault


@pytest.mark.timeout(180)
def test_redis_killed_and_restarted_loses_no_job(stack_of, redis_server: RedisServer) -> None:
    # A lease longer than the outage: the running attempt keeps its job through it.
    stack: FaultStack = stack_of(NST_LEASE_SECONDS="15").start_api()
    stack.start_worker()
    with stack.client() as alice:
        running = alice.submit(CONTENT, [STYLE], long_params(300))
        queued = [alice.submit(CONTENT, [STYLE], TINY) for _ in range(2)]
        wait_running(alice, running.id)
        time.sleep(1.5)  # appendfsync everysec: what was written a second ago is on disk
        at_kill = stack.store().get(running.id)
        assert at_kill.status == "running", "the long job ended too soon: give it more iterations"
        step_before = at_kill.progress.step

        redis_server.kill()
        down_at = time.monotonic()
        # The API answers 503 with the one error shape, never 500, while Redis is down.
        assert httpx.get(f"{stack.url}/healthz").status_code == 200
        ready = httpx.get(f"{stack.url}/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "unavailable"
        assert ready.headers["retry-after"]
        for call in (lambda: alice.get(running.id), lambda: alice.list(),
                     lambda: alice.cancel(queued[0].id), lambda: alice.result(running.id),
                     lambda: alice.submit(CONTENT, [STYLE], TINY)):
            with pytest.raises(NstApiError) as e:
                call()
            assert (e.value.status, e.value.code) == (503, "unavailable"), e.value
        time.sleep(max(0.0, 4 - (time.monotonic() - down_at)))

        redis_server.start()
        # The API recovers by itself: readiness, reads and new submissions (publishing too).
        deadline = time.monotonic() + 15
        while httpx.get(f"{stack.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "API did not recover after Redis came back"
            time.sleep(0.2)
        assert alice.get(running.id).status in {"running", "succeeded"}
        later = alice.submit(CONTENT, [STYLE], TINY)

        jobs = [running.id, *(q.id for q in queued), later.id]
        views = assert_invariant(stack, alice, dict.fromkeys(jobs, "succeeded"))
        # The queued jobs' messages survived in the AOF; the running attempt was never lost.
        assert all(views[j].attempts == 1 for j in jobs), {j: views[j].attempts for j in jobs}
        assert views[running.id].progress.step > step_before
    # The worker reconnected by itself: the same process, connected twice, consumed afterwards.
    assert len(stack.workers()) == 1
    assert len(stack.worker_lines("Connected to redis://")) == 2
    # While its one pool process ran the long job it took no other message, not even on its new
    # connection: a prefetched message would wait behind the long job while other workers idle,
    # and if this worker died it would stay unacknowledged until the visibility timeout.
    events = [e for e in stack.worker_events("", exact=False)
              if e["msg"].endswith("] received")
              or (e["msg"] == "job finished" and e["job_id"] == running.id)]
    first_end = next(i for i, e in enumerate(events) if e["msg"] == "job finished")
    assert first_end == 1, [e["msg"] for e in events]


@pytest.mark.timeout(180)
def test_redis_down_longer_than_a_lease_still_completes_each_job_once(
        stack_of, redis_server: RedisServer) -> None:
    # The running attempt's lease runs out while Redis is away. When it is back, either that
    # attempt renews first and goes on, or a reaper requeues the job first and the old attempt
    # finds its token gone and stops without writing: one completion either way.
    stack: FaultStack = stack_of(NST_LEASE_SECONDS="3").start_api()
    stack.start_worker()
    with stack.client() as alice:
        running = alice.submit(CONTENT, [STYLE], long_params(300))
        queued = alice.submit(CONTENT, [STYLE], TINY)
        wait_running(alice, running.id)
        time.sleep(1.5)  # appendfsync everysec
        assert stack.store().get(running.id).status == "running"
        redis_server.kill()
        time.sleep(7)  # more than twice the lease
        redis_server.start()

        views = assert_invariant(stack, alice, {running.id: "succeeded",
                                                queued.id: "succeeded"})
        assert views[running.id].attempts in (1, 2)
        assert views[queued.id].attempts == 1
    if views[running.id].attempts == 2:  # the first attempt noticed and stopped
        assert stack.worker_lines("stopped: the lease went to another attempt") or \
            stack.worker_lines("lost the job before finishing")
    assert len(stack.worker_lines("Connected to redis://")) == 2
