"""Fixtures of the integration suite: a private redis-server, stacks of real API/worker processes.

Everything listens on free loopback ports in a temp dir, so runs never touch a shared Redis.
Worker and API output goes to log files, attached to the report when a test fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from integration_stack import Stack

from api.client import NstClient
from api.stack import start_redis, stop_all


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server (AOF on) on a free loopback port."""
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop_all([proc])


@pytest.fixture(scope="session")
def stack_factory(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Build stacks on the session Redis; all are stopped at the end of the session."""
    tmp = tmp_path_factory.mktemp("stacks")
    stacks: list[Stack] = []

    def make(name: str, **env: str) -> Stack:
        # One Redis database per stack: a deployment owns its database (its reaper reclaims
        # every job in it), so stacks sharing one would run each other's jobs.
        db_url = redis_url.rsplit("/", 1)[0] + f"/{len(stacks) + 1}"
        stack = Stack(name, db_url, tmp, **env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="session")
def stack(stack_factory) -> Stack:
    """The main stack: API, one worker, local store, 3 unfinished jobs per tenant."""
    s = stack_factory("main", NST_MAX_ACTIVE_JOBS_PER_TENANT="3",
                       NST_MAX_UPLOAD_BYTES=str(1024 * 1024)).start_api()
    s.start_worker()
    return s


@pytest.fixture
def alice(stack: Stack) -> Iterator[NstClient]:
    with stack.client("key-alice") as c:
        yield c


@pytest.fixture
def bob(stack: Stack) -> Iterator[NstClient]:
    with stack.client("key-bob") as c:
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """On failure, attach the logs of the stacks the test used."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Stack):
                report.sections.append((f"stack {value.name} logs", value.dump_logs()))
