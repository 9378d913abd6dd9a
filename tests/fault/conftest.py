"""Fixtures of the fault suite: per test, a private redis-server (AOF, `appendfsync everysec`) on
a free loopback port in a temp dir, or a Sentinel group (master, replica, three Sentinels), and
stacks of real API and worker processes on it.

The stack helpers are in tests/support (the integration suite's, extended).
Process logs are attached to the report when a test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.redis_servers import RedisDeployment, RedisServer, SentinelGroup
from tests.support.fault import FaultStack


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """This test's own redis-server; it may be killed and restarted by the test."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """This test's own master, replica and three Sentinels (down after 1 s, quorum 2)."""
    group = SentinelGroup(tmp_path / "redis").start()
    yield group
    group.stop()


@pytest.fixture
def stack_on(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """Build a FaultStack on a given Redis deployment (API not started); stopped after the test."""
    stacks: list[FaultStack] = []
    request.node.fault_stacks = stacks

    def make(server: RedisDeployment, **env: str) -> FaultStack:
        stack = FaultStack(f"s{len(stacks)}", server, tmp_path, **env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture
def stack_of(redis_server: RedisServer, stack_on):
    """Build a FaultStack on this test's Redis (API not started); stopped after the test."""
    return lambda **env: stack_on(redis_server, **env)
