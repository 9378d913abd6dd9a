"""Fixtures of the security suite: the integration suite's real processes, reused, not rewritten.

`redis_url` (a private redis-server on a free loopback port) and `stack_factory` (real API and
worker processes, one Redis database per stack) come from tests/support/fixtures.py. The security stack is an
API with keys for several tenants and no worker: nothing a hostile request does may reach the
queue, and the jobs the tests do create are canceled while they are still queued.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.hostile import API_KEYS, UPLOAD_LIMIT, Backend
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def sec_stack(stack_factory) -> Stack:
    """An API (debug logs, 64 KiB per file) with keys of two tenants (alice has two), no worker."""
    return stack_factory("security", NST_API_KEYS=API_KEYS,
                         NST_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT), NST_LOG_LEVEL="DEBUG",
                         NST_MAX_ACTIVE_JOBS_PER_TENANT="50").start_api()


@pytest.fixture(scope="session")
def backend(sec_stack: Stack) -> Iterator[Backend]:
    """The security stack's Redis database and data directory, read-only."""
    b = Backend(sec_stack)
    yield b
    b.close()
