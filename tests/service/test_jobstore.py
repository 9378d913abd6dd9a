"""The job store's state machine on a real Redis: claims, leases, tokens, cancel, reaping."""

from __future__ import annotations

import time

import pytest

from service.contract import JobProgress, JobStatus, lua_is_terminal
from service.jobstore import IdempotencyConflict, JobStore, QueueFull, TenantLimit, new_job_id


def create(store: JobStore, tenant: str = "t", **kw) -> str:
    job_id = new_job_id()
    limits = {"ttl": 600, "max_active": 10, "max_queue": 10, **kw}
    job = store.create(job_id, tenant, {"size": 64}, {"content": "c", "styles": ["s"]}, **limits)
    assert job is not None
    return job.id


PROGRESS = JobProgress(stage="optimize", scale=1, scales=1, size=[32, 32], iteration=1,
                       iterations=2, step=1, total_steps=2, percent=50.0, losses={"total": 1.0},
                       elapsed_seconds=0.1, eta_seconds=0.1)


def test_claim_runs_a_job_once_and_only_the_owner_finishes_it(store: JobStore) -> None:
    job_id = create(store)
    first = store.claim(job_id, lease_seconds=30, max_attempts=3)
    assert first.outcome == "claimed" and first.queue_wait is not None
    assert store.claim(job_id, lease_seconds=30, max_attempts=3).outcome == "busy"  # duplicate
    assert store.touch(job_id, "not-the-token", lease_seconds=30) == "lost"
    assert store.finish(job_id, "not-the-token", "succeeded") is None
    assert store.touch(job_id, first.token, lease_seconds=30, progress=PROGRESS) == "ok"
    assert store.finish(job_id, first.token, "succeeded", result=("k", "etag")) is not None
    job = store.get(job_id)
    assert job.status == "succeeded" and job.attempts == 1 and job.result_key == "k"
    assert job.progress == PROGRESS
    assert store.claim(job_id, lease_seconds=30, max_attempts=3).outcome == "done"  # late copy
    assert store.status_counts()["succeeded"] == 1


def test_cancel_queued_never_runs_and_running_is_flagged(store: JobStore) -> None:
    queued = create(store)
    status, job = store.cancel(queued)
    assert status == "canceled" and job is not None and job.status == JobStatus.CANCELED
    assert store.claim(queued, lease_seconds=30, max_attempts=3).outcome == "done"
    assert store.cancel(queued)[0] == "canceled"  # idempotent
    assert store.cancel(new_job_id()) == ("missing", None)

    running = create(store)
    claim = store.claim(running, lease_seconds=30, max_attempts=3)
    assert store.cancel(running)[0] == "running"
    assert store.verdict(running, claim.token) == "cancel"
    store.finish(running, claim.token, "canceled")
    assert store.get(running).status == "canceled"


def test_expired_leases_are_requeued_then_exhausted(store: JobStore) -> None:
    job_id = create(store)
    for attempt in (1, 2):
        claim = store.claim(job_id, lease_seconds=0.2, max_attempts=2)
        assert claim.outcome == "claimed" and store.get(job_id).attempts == attempt
        assert store.reap(job_id, max_attempts=2, soft_time_limit=60) == "alive"
        time.sleep(0.3)
        assert job_id in store.stale_running()
        expected = "requeued" if attempt == 1 else "exhausted"
        assert store.reap(job_id, max_attempts=2, soft_time_limit=60) == expected
        assert store.touch(job_id, claim.token, lease_seconds=30) == "lost"  # the old attempt
    job = store.get(job_id)
    assert job.status == "failed" and job.error_code == "attempts_exhausted"


def test_a_redelivery_after_the_last_lost_attempt_ends_the_job_counting_only_runs(
        store: JobStore) -> None:
    # Celery puts a killed delivery's message back; its claim may beat the reaper to the job.
    job_id = create(store)
    for _ in (1, 2):
        assert store.claim(job_id, lease_seconds=0.1, max_attempts=2).outcome == "claimed"
        time.sleep(0.2)  # the attempt's worker died: its lease runs out
    assert store.claim(job_id, lease_seconds=30, max_attempts=2).outcome == "exhausted"
    job = store.get(job_id)
    assert job.status == "failed" and job.error_code == "attempts_exhausted"
    assert job.attempts == 2 and "delivered 2 times" in job.error_message


def test_reaping_a_job_past_its_time_limit_fails_it_with_timeout(store: JobStore) -> None:
    job_id = create(store)
    store.claim(job_id, lease_seconds=0.1, max_attempts=3)
    time.sleep(0.2)
    assert store.reap(job_id, max_attempts=3, soft_time_limit=0.1) == "timeout"
    assert store.get(job_id).error_code == "timeout"


def test_limits_and_idempotency(store: JobStore) -> None:
    create(store, "a", max_active=1)
    with pytest.raises(TenantLimit):
        create(store, "a", max_active=1)
    with pytest.raises(QueueFull):
        create(store, "b", max_queue=1)
    first = create(store, "c", idempotency=("key", "hash-1"))
    assert create(store, "c", idempotency=("key", "hash-1")) == first
    assert store.find_idempotent("c", "key", "hash-1") == first
    with pytest.raises(IdempotencyConflict):
        create(store, "c", idempotency=("key", "hash-2"))
    assert create(store, "d", idempotency=("key", "hash-1")) != first  # scoped per tenant


def test_list_pages_newest_first(store: JobStore) -> None:
    ids = [create(store, "p") for _ in range(5)]
    store.cancel(ids[1])
    page, cursor = store.list("p", limit=2)
    assert [j.id for j in page] == ids[:2:-1]
    page, cursor = store.list("p", limit=2, before=cursor)
    assert [j.id for j in page] == [ids[2], ids[1]]
    page, cursor = store.list("p", limit=2, before=cursor)
    assert [j.id for j in page] == [ids[0]] and cursor is None
    assert [j.id for j in store.list("p", limit=10, status="canceled")[0]] == [ids[1]]


def test_terminal_statuses_are_one_definition() -> None:
    assert {s for s in JobStatus if s.is_terminal} == {"succeeded", "failed", "canceled"}
    assert all(f"'{s}'" in lua_is_terminal() for s in JobStatus if s.is_terminal)
    assert "'queued'" not in lua_is_terminal() and "'running'" not in lua_is_terminal()


def test_create_returns_the_record_and_replays_return_the_earlier_one(store: JobStore) -> None:
    job = store.create(new_job_id(), "t", {"size": 64}, {"content": "c", "styles": []}, ttl=60,
                       max_active=5, max_queue=5, idempotency=("k", "h"))
    assert job is not None and job.status == JobStatus.QUEUED and job.tenant == "t"
    again = store.create(new_job_id(), "t", {}, {}, ttl=60, max_active=5, max_queue=5,
                         idempotency=("k", "h"))
    assert again is not None and again.id == job.id


def test_list_drops_expired_records_from_the_index(store: JobStore) -> None:
    ids = [create(store, "x") for _ in range(3)]
    store.r.delete(f"{store.prefix}job:{ids[1]}")
    page, cursor = store.list("x", limit=5)
    assert [j.id for j in page] == [ids[2], ids[0]] and cursor is None
    assert store.r.zcard(f"{store.prefix}tenant:x:jobs") == 2


def test_a_created_job_is_unsent_until_marked_and_handed_out_once(store: JobStore) -> None:
    """Issue 11 #3: a job whose publish failed (or whose API died) is published by a reaper."""
    sent, lost, claimed = create(store), create(store), create(store)
    store.mark_sent(sent)
    store.claim(claimed, lease_seconds=30, max_attempts=3)
    assert store.unsent(0) == [lost]
    assert store.unsent(30) == []  # handed out: nobody else sends it for another period
    store.mark_sent(lost)
    assert store.r.zcard(f"{store.prefix}unsent") == 0


def test_an_expired_unfinished_record_frees_the_tenant_slot(store: JobStore) -> None:
    """Issue 11 #10: a queued record that expired must not hold the cap of 1 forever."""
    create(store, "cap", max_active=1, ttl=1)
    with pytest.raises(TenantLimit):
        create(store, "cap", max_active=1)
    time.sleep(1.2)  # the record expires in Redis; the active set still names it
    assert create(store, "cap", max_active=1)


@pytest.mark.parametrize("ending", ["succeeded", "failed", "canceled-queued", "canceled-running",
                                    "exhausted"])
def test_every_ending_releases_the_tenant_slot(store: JobStore, ending: str) -> None:
    """Issue 11 #10: each way a job ends frees its slot under a cap of 1 (no shared cap)."""
    job_id = create(store, "slot", max_active=1)
    if ending == "canceled-queued":
        store.cancel(job_id)
    elif ending == "exhausted":
        store.claim(job_id, lease_seconds=0.05, max_attempts=1)
        time.sleep(0.1)
        assert store.reap(job_id, max_attempts=1, soft_time_limit=60) == "exhausted"
    else:
        claim = store.claim(job_id, lease_seconds=30, max_attempts=3)
        status = "canceled" if ending == "canceled-running" else ending
        assert store.finish(job_id, claim.token, status) is not None
    assert store.get(job_id).finished
    assert store.r.scard(f"{store.prefix}tenant:slot:active") == 0
    assert create(store, "slot", max_active=1)


def test_a_touch_renews_the_lease_by_the_given_seconds(store: JobStore) -> None:
    """Issue 11 #10: a renewal that wrote `now + 0` would let the reaper take a live job."""
    job_id = create(store)
    claim = store.claim(job_id, lease_seconds=0.5, max_attempts=3)
    assert store.touch(job_id, claim.token, lease_seconds=30) == "ok"
    now_s, now_us = store.r.time()
    lease = float(store.r.hget(f"{store.prefix}job:{job_id}", "lease_until"))
    assert 29 < lease - (now_s + now_us / 1e6) <= 30
    time.sleep(0.6)  # past the claim's lease: the renewal must hold it
    assert job_id not in store.stale_running()
    assert store.reap(job_id, max_attempts=3, soft_time_limit=60) == "alive"


def test_failures_are_counted_by_code_once_per_job(store: JobStore) -> None:
    """The finish script counts each ending once: a late finish or reap of the job adds nothing."""
    failed = create(store)
    claim = store.claim(failed, lease_seconds=30, max_attempts=3)
    for first in (True, False):
        seconds = store.finish(failed, claim.token, JobStatus.FAILED, error=("invalid_input", "x"))
        assert (seconds is not None) == first
    assert store.reap(failed, max_attempts=3, soft_time_limit=60) == "not_running"
    spent = create(store)
    store.claim(spent, lease_seconds=0, max_attempts=1)
    assert store.reap(spent, max_attempts=1, soft_time_limit=60) == "exhausted"
    assert store.failure_counts() == {"invalid_input": 1, "attempts_exhausted": 1}
    assert store.status_counts()[JobStatus.FAILED] == 2
    assert store.r.ttl(f"{store.prefix}failures") == -1  # totals never expire


def test_queue_positions_follow_the_queued_set_in_one_pipeline(store: JobStore) -> None:
    first, second, third = create(store, "a"), create(store, "b"), create(store, "a")
    other = create(store)
    assert store.queue_positions([third, first, second]) == {first: 1, second: 2, third: 3}
    store.claim(first, lease_seconds=30, max_attempts=3)  # running: out of the queue
    store.cancel(second)
    assert store.queue_positions([first, second, third, other]) == {third: 1, other: 2}
    assert store.queue_positions([]) == {} and store.queue_positions([new_job_id()]) == {}
