"""Fault: Redis Sentinel fails over. The master is SIGKILLed while jobs are queued and running; three
Sentinels promote the replica; the API and the worker find it through them and every accepted job
ends exactly once. Whatever the dead master had acknowledged and the promoted replica lacks is the
asynchronous replication window: the test names it when it happens, and shows what WAIT changes.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from cli.redis_servers import RedisServer, SentinelGroup
from client import NstApiError, NstClient
from service.jobstore import DEFAULT_PREFIX, JobStore, new_job_id
from service.settings import Settings
from tests.support.fault import assert_invariant, wait_running
from tests.support.sse import read_stream
from tests.support.stack import CONTENT, STYLE, long_params

pytestmark = pytest.mark.fault

JOB = long_params(12)  # 1-3 s each on the shared 2-core machine


def submit_until_accepted(client: NstClient, timeout: float) -> tuple[str, int]:
    """Submit until a 202; returns the job id and how many 503 `unavailable` came first."""
    refused, deadline = 0, time.monotonic() + timeout
    while True:
        try:
            return client.submit(CONTENT, [STYLE], JOB).id, refused
        except NstApiError as e:
            assert (e.status, e.code) == (503, "unavailable"), e  # never a 500
            refused += 1
        assert time.monotonic() < deadline, f"no job accepted in {timeout} s after the failover"
        time.sleep(0.2)


def lost_in_failover(dead: RedisServer, promoted: redis.Redis, job_ids: list[str]
                     ) -> dict[str, list[str]]:
    """Per job, the status events the dead master had written that the promoted replica lacks.

    The dead master's AOF holds every write it acknowledged (a SIGKILL of the process loses
    nothing already written to the file), and a job's event stream only ever grows, so an event
    there and not on the new master is one the replica never received: the replication window.
    """
    aof = RedisServer(dead.dir).start()  # another port: the Sentinels do not know it
    try:
        old, lost = aof.client(), {}
        for job_id in job_ids:
            key = f"{DEFAULT_PREFIX}job:{job_id}:events"
            now = {sid for sid, _ in promoted.xrange(key)}
            missing = [f"{sid} {f['kind']} {f['status']}" for sid, f in old.xrange(key)
                       if sid not in now and f["kind"] == "status"]
            if missing:
                lost[job_id] = missing
        return lost
    finally:
        aof.stop()


@pytest.mark.timeout(150)
@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["async", "wait-1-replica"])
def test_the_master_killed_the_replica_takes_over_and_every_job_ends_once(
        sentinel_group: SentinelGroup, stack_on, wait_replicas: int) -> None:
    group = sentinel_group
    # A lease longer than the failover: the running attempt keeps its job through it.
    stack = stack_on(group, NST_LEASE_SECONDS="10", NST_REQUEUE_AFTER_SECONDS="20",
                     NST_REDIS_WAIT_REPLICAS=str(wait_replicas),
                     NST_REDIS_WAIT_TIMEOUT_MS="200").start_api()
    stack.start_worker()
    with stack.client() as alice:
        accepted = [alice.submit(CONTENT, [STYLE], JOB).id for _ in range(5)]
        wait_running(alice, accepted[0])
        statuses = [alice.get(j).status for j in accepted]
        assert "running" in statuses and "queued" in statuses, statuses

        killed_at = time.monotonic()
        dead = group.kill_master()
        with ThreadPoolExecutor(1) as pool:  # a client keeps submitting through the failover
            submitted = pool.submit(submit_until_accepted, alice, 40)
            group.wait_failover(30)
            promoted = time.monotonic() - killed_at
            later, refused = submitted.result()
        serving = time.monotonic() - killed_at
        accepted.append(later)

        lost = lost_in_failover(dead, group.client(), accepted)
        assert not lost, (
            "acknowledged by the dead master (in its AOF) but never replicated before it died: "
            f"the asynchronous replication window (NST_REDIS_WAIT_REPLICAS={wait_replicas}): {lost}")
        views = assert_invariant(stack, alice, dict.fromkeys(accepted, "succeeded"), timeout=90)
        # The event stream follows the master through the Sentinels too.
        events = read_stream(alice, accepted[0])
        assert events[-1]["data"]["status"] == "succeeded"
    attempts = [views[j].attempts for j in accepted]
    assert all(a in (1, 2) for a in attempts), attempts
    print(f"\nFAILOVER wait_replicas={wait_replicas}: promoted {promoted:.1f} s after the kill, a job "
          f"accepted {serving:.1f} s after the kill ({refused} x 503 before), statuses at the "
          f"kill {statuses}, attempts {attempts}, nothing lost")


def test_every_celery_app_reaches_the_master_through_the_sentinels(
        sentinel_group: SentinelGroup) -> None:
    from webhooks.app import create_webhook_app
    from worker.celery_app import create_celery_app

    env = sentinel_group.env()
    settings = Settings(redis_url=None, redis_sentinels=env["NST_REDIS_SENTINELS"],
                        redis_master_name=env["NST_REDIS_MASTER_NAME"])
    for make in (create_celery_app, create_webhook_app):  # the jobs' and the webhooks' apps
        app = make(settings)
        app.send_task("nst.probe", args=["x"], queue=f"probe-{make.__name__}")
        assert sentinel_group.client().llen(f"probe-{make.__name__}") == 1, make.__name__


def test_wait_has_each_transition_on_the_replica_before_it_returns(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    master = RedisServer(tmp_path / "master").start()
    replica = RedisServer(tmp_path / "replica", replica_of=master).start()
    try:
        store = JobStore(master.client(), wait_replicas=1, wait_timeout_ms=300)
        on_replica = replica.client()
        job_id = new_job_id()  # a fresh server: the first script call also loads it
        store.create(job_id, "t", {"size": 64}, {"content": "c", "styles": []}, ttl=600,
                     max_active=10, max_queue=10)
        assert on_replica.hget(f"{DEFAULT_PREFIX}job:{job_id}", "status") == "queued"
        claim = store.claim(job_id, lease_seconds=30, max_attempts=3)
        assert on_replica.hget(f"{DEFAULT_PREFIX}job:{job_id}", "status") == "running"
        assert store.finish(job_id, claim.token, "succeeded", result=("k", "e")) is not None
        assert on_replica.hget(f"{DEFAULT_PREFIX}job:{job_id}", "status") == "succeeded"
        assert not [r for r in caplog.records if "acknowledged" in r.getMessage()]

        replica.kill()  # no replica: a transition waits out its timeout, then goes on (logged)
        caplog.set_level(logging.WARNING, logger="nst.store")
        start = time.monotonic()
        assert store.cancel(job_id)[0] == "succeeded"
        assert time.monotonic() - start >= 0.3
        warned = [r for r in caplog.records if "acknowledged" in r.getMessage()]
        assert warned and warned[0].replicas == 0
    finally:
        replica.stop()
        master.stop()
