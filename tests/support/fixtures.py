"""Fixtures shared by the process-starting suites (a pytest plugin, loaded by tests/conftest.py):
a private redis-server and stacks of real API and worker processes on it.

Everything listens on free loopback ports in a temp dir, so runs never touch a shared Redis.
Worker and API output goes to log files, attached to the report when a test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from cli.stack import start_redis, stop_all
from service.jobstore import JobStore
from service.results import LocalStore
from service.settings import Settings
from tests.support.redis_prefix import LOCAL_REDIS, delete_prefix, unique_prefix
from tests.support.stack import Stack


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
    # Side by side: each worker takes seconds to shut down, and one by one the stacks took 22 s.
    with ThreadPoolExecutor(max_workers=max(1, len(stacks))) as pool:
        list(pool.map(Stack.stop, stacks))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """On failure, attach the logs of the stacks the test used."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        used = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Stack)]
        for stack in used + getattr(item, "fault_stacks", []):  # the fault suite's, built per test
            report.sections.append((f"stack {stack.name} logs", stack.dump_logs()))


# --- in-process tests: the real Redis on 6379 under this session's prefix --------------------


@pytest.fixture(scope="session")
def local_redis() -> Iterator[redis.Redis]:
    """A client of the Redis on 127.0.0.1:6379; every key this session made is removed after."""
    client = redis.Redis.from_url(LOCAL_REDIS, decode_responses=True)
    session = unique_prefix()
    client.session_prefix = session  # type: ignore[attr-defined]
    yield client
    delete_prefix(client, session)
    client.close()


@pytest.fixture
def store(local_redis: redis.Redis) -> JobStore:
    """A job store of its own (a fresh prefix inside the session's)."""
    return JobStore(local_redis, prefix=f"{local_redis.session_prefix}{uuid.uuid4().hex[:8]}:")


@pytest.fixture
def results(tmp_path: Path) -> LocalStore:
    """A local result store in this test's temp dir."""
    return LocalStore(tmp_path / "store")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for in-process tests: a temp data dir, short leases, fast progress writes."""
    return Settings(data_dir=tmp_path, lease_seconds=3, progress_interval_seconds=0.05,
                    device="cpu", torch_threads=1)
