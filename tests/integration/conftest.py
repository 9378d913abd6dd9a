"""Fixtures of the integration suite: the main stack (API and one worker) and two tenants' clients.

`redis_url` and `stack_factory` come from tests/support/fixtures.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from client import NstClient
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def stack(stack_factory) -> Stack:
    """The main stack: API, one worker, local store, 3 unfinished jobs per tenant."""
    s = stack_factory("main", NST_MAX_ACTIVE_JOBS_PER_TENANT="3",
                       NST_MAX_UPLOAD_BYTES=str(1024 * 1024)).start_api()
    s.start_worker()
    return s


@pytest.fixture(scope="session")
def idle(stack_factory) -> Stack:
    """An API with no worker: every job stays queued (tests cancel theirs)."""
    return stack_factory("idle").start_api()


@pytest.fixture
def alice(stack: Stack) -> Iterator[NstClient]:
    with stack.client("key-alice") as c:
        yield c


@pytest.fixture
def bob(stack: Stack) -> Iterator[NstClient]:
    with stack.client("key-bob") as c:
        yield c
