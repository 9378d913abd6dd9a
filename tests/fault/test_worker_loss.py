"""Faults 2 and 5: every worker process SIGKILLed with several jobs accepted, a poison job that
kills the pool process running it on every attempt, and a pool process slow to start."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from cli.stack import wait_until
from tests.support.fault import FaultStack, assert_invariant, wait_running, wait_view
from tests.support.stack import CONTENT, STYLE, TINY, long_params

pytestmark = pytest.mark.fault


@pytest.mark.timeout(240)
def test_all_workers_killed_a_fresh_worker_completes_every_job_once(stack_of) -> None:
    stack: FaultStack = stack_of().start_api()
    stack.start_worker()
    stack.start_worker()
    with stack.client() as alice:
        running = [alice.submit(CONTENT, [STYLE], long_params(n)) for n in (150, 100)]
        queued = [alice.submit(CONTENT, [STYLE], TINY) for _ in range(3)]
        for job in running:
            wait_running(alice, job.id)
        assert {alice.get(j.id).status for j in queued} == {"queued"}

        # Every worker dies at once, a running job each and maybe a prefetched message each;
        # their messages stay unacknowledged in Redis until the visibility timeout (2 h).
        stack.kill_workers()
        killed_at = time.monotonic()
        stack.start_worker()

        jobs = [j.id for j in running + queued]
        views = assert_invariant(stack, alice, dict.fromkeys(jobs, "succeeded"), timeout=120)
        took = time.monotonic() - killed_at
        assert took < 120, took
        assert [views[j.id].attempts for j in running] == [2, 2]
        assert [views[j.id].attempts for j in queued] == [1, 1, 1]
    reclaimed = {e["job_id"] for e in stack.worker_events("reclaimed a job with an expired lease")}
    assert reclaimed == {j.id for j in running}


class PoisonKiller(threading.Thread):
    """Plays an input that crashes the process running it: each time the job starts an attempt,
    SIGKILL the worker's pool process (the worker runs one), as a segfault in the engine would."""

    def __init__(self, stack: FaultStack, worker: psutil.Process, job_id: str) -> None:
        super().__init__(name="poison-killer", daemon=True)
        self.stack, self.worker, self.job_id = stack, worker, job_id
        self.kills: list[int] = []  # the attempt numbers killed
        self.done = threading.Event()

    def run(self) -> None:
        store = self.stack.store()
        while not self.done.is_set():
            job = store.get(self.job_id)
            if job is None or job.finished:
                return
            if job.status == "running" and job.attempts not in self.kills:
                time.sleep(0.3)  # mid-run
                for child in self.worker.children(recursive=True):
                    child.kill()
                self.kills.append(job.attempts)
            time.sleep(0.05)


@pytest.mark.timeout(240)
def test_a_poison_job_fails_after_its_attempts_and_the_worker_goes_on(stack_of) -> None:
    stack: FaultStack = stack_of(NST_MAX_ATTEMPTS="3").start_api()
    worker = stack.start_worker()
    with stack.client() as alice:
        poison = alice.submit(CONTENT, [STYLE], long_params(300))
        killer = PoisonKiller(stack, psutil.Process(worker.pid), poison.id)
        killer.start()
        try:
            # Submitted while the poison job cycles: it is served between the poison's attempts.
            wait_view(alice, poison.id, lambda v: v.attempts >= 1)
            meanwhile = alice.submit(CONTENT, [STYLE], TINY)
            final = wait_view(alice, poison.id, lambda v: v.status != "running"
                              and v.status != "queued", timeout=150)
        finally:
            killer.done.set()
            killer.join(5)
        assert final.status == "failed", final
        assert final.error.code == "attempts_exhausted", final
        assert final.attempts == 3 and killer.kills == [1, 2, 3]

        # The worker itself lived through it and takes new jobs.
        assert worker.poll() is None
        after = alice.submit(CONTENT, [STYLE], TINY)
        views = assert_invariant(stack, alice, {
            poison.id: "failed:attempts_exhausted",
            meanwhile.id: "succeeded",
            after.id: "succeeded",
        })
        assert views[meanwhile.id].attempts == 1 and views[after.id].attempts == 1
    # After each kill two paths race to start the next attempt: the reaper requeues the job once
    # its lease expires, and Celery puts the killed delivery's message back
    # (task_reject_on_worker_lost), whose claim takes over the expired lease itself. Either may
    # win each time; whichever runs after the third kill ends the job, and only one of them does.
    reaped = [e["outcome"] for e in stack.worker_events("reclaimed a job with an expired lease")
              if e["job_id"] == poison.id]
    refused = [e["outcome"] for e in stack.worker_events("delivery not run")
               if e["job_id"] == poison.id]
    assert set(reaped) <= {"requeued", "exhausted"}, reaped
    assert reaped.count("requeued") <= 2, reaped
    assert reaped.count("exhausted") + refused.count("exhausted") == 1, (reaped, refused)


@pytest.mark.timeout(240)
def test_a_pool_process_slow_to_load_the_engine_is_waited_for(stack_of) -> None:
    """Found by the chaos soak: Celery kills a new pool process that has not reported up within
    `worker_proc_alive_timeout` (4 s by default), and ours report up only after loading torch and
    VGG19. On a busy host a worker lost pool process after pool process that way, running nothing.
    Here the replacement of a killed pool process is frozen for 8 s, as a slow load would be."""
    stack: FaultStack = stack_of().start_api()
    worker = psutil.Process(stack.start_worker().pid)
    wait_until(lambda: stack.worker_lines("engine loaded"), 120)
    first = worker.children()[0]
    first.kill()
    wait_until(lambda: [c for c in worker.children() if c.pid != first.pid], 30)
    slow = next(c for c in worker.children() if c.pid != first.pid)
    slow.suspend()
    assert len(stack.worker_lines("engine loaded")) == 1  # it had not loaded yet: frozen mid-start
    time.sleep(8)
    assert slow.is_running(), stack.worker_lines("Timed out waiting for UP message")
    slow.resume()
    with stack.client() as alice:
        job = alice.submit(CONTENT, [STYLE], TINY)
        views = assert_invariant(stack, alice, {job.id: "succeeded"})
    assert views[job.id].attempts == 1
    assert not stack.worker_lines("Timed out waiting for UP message")
    assert [c.pid for c in worker.children()] == [slow.pid]  # the slow one lived and served
