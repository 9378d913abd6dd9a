"""Fixtures of the fault suite: per test, a private redis-server (AOF, `appendfsync everysec`) on
a free loopback port in a temp dir, and a stack of real API and worker processes on it.

The stack helpers are in tests/support (the integration suite's, extended).
Process logs are attached to the report when a test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault import FaultStack, RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """This test's own redis-server; it may be killed and restarted by the test."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def stack_of(redis_server: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
             ) -> Iterator:
    """Build a FaultStack on this test's Redis (API not started); stopped after the test."""
    stacks: list[FaultStack] = []
    request.node.fault_stacks = stacks

    def make(**env: str) -> FaultStack:
        stack = FaultStack(f"s{len(stacks)}", redis_server, tmp_path, **env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
