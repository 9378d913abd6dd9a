"""Fault 4: the API process is stopped (SIGTERM, then SIGKILL) and started again mid-run."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.support.fault import FaultStack, assert_invariant, wait_running
from tests.support.stack import CONTENT, STYLE, TINY, long_params

pytestmark = pytest.mark.fault


@pytest.mark.timeout(180)
def test_api_restarts_leave_running_and_queued_jobs_alone(stack_of) -> None:
    stack: FaultStack = stack_of().start_api()
    stack.start_worker()
    store = stack.store()
    with stack.client() as alice:
        running = alice.submit(CONTENT, [STYLE], long_params(300))
        queued = alice.submit(CONTENT, [STYLE], TINY)
        wait_running(alice, running.id)

        for sig in (signal.SIGTERM, signal.SIGKILL):
            step = store.get(running.id).progress.step
            stack.stop_api(sig)
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{stack.url}/healthz", timeout=2)
            time.sleep(1.0)
            job = store.get(running.id)
            # Without an API the worker carries on: same attempt, progress moving.
            assert job.status == "succeeded" or job.progress.step > step, job
            assert job.attempts == 1
            stack.start_api()  # the same port
            view = alice.get(running.id)  # through the new process
            assert view.status in {"running", "succeeded"} and view.attempts == 1

        views = assert_invariant(stack, alice, {running.id: "succeeded",
                                                queued.id: "succeeded"})
        assert views[running.id].attempts == 1 and views[queued.id].attempts == 1
    assert len(stack.worker_events("job started")) == 2  # nothing ran again
