"""Fault: a client follows a job's event stream, served by two API processes, while Redis is
SIGKILLed and started again on its AOF. The client sees a gap, not an error, and the stream
ends with the job's terminal event."""

from __future__ import annotations

import threading
import time

import pytest

from cli.redis_servers import RedisServer
from cli.stack import ServiceStack
from tests.support.fault import FaultStack, wait_running
from tests.support.sse import read_stream
from tests.support.stack import CONTENT, STYLE, long_params

pytestmark = pytest.mark.fault


@pytest.mark.timeout(180)
def test_stream_survives_a_redis_restart_with_two_api_processes(stack_of, redis_server: RedisServer
                                                                 ) -> None:
    stack: FaultStack = stack_of(NST_LEASE_SECONDS="15")
    ServiceStack.start_api(stack, workers=2, timeout=60)
    stack.start_worker()
    with stack.client() as alice:
        job = alice.submit(CONTENT, [STYLE], long_params(300))
        wait_running(alice, job.id)
        events: list[dict] = []
        errors: list[BaseException] = []

        def follow() -> None:
            try:
                events.extend(read_stream(alice, job.id))
            except BaseException as e:  # noqa: BLE001 - handed to the test thread
                errors.append(e)

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        time.sleep(2)
        redis_server.kill()
        time.sleep(3)
        redis_server.start()
        reader.join(150)
        assert not reader.is_alive(), "the stream did not close after the job ended"
        assert not errors, errors
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses[-1] == "succeeded", statuses
    steps = [e["data"]["progress"]["step"] for e in events if e["event"] == "progress"]
    assert steps == sorted(steps) and len(set(steps)) > 2
    ids = [tuple(map(int, e["id"].split("-"))) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # in order, nothing twice
