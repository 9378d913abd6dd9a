"""Fixtures of the security suite: the integration suite's real processes, reused, not rewritten.

`redis_url` (a private redis-server on a free loopback port) and `stack_factory` (real API and
worker processes, one Redis database per stack) come from tests/integration/conftest.py, loaded
under another module name so that both suites can run in one session. The security stack is an
API with keys for several tenants and no worker: nothing a hostile request does may reach the
queue, and the jobs the tests do create are canceled while they are still queued.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
if str(_INTEGRATION) not in sys.path:
    sys.path.insert(0, str(_INTEGRATION))


def _load_integration_conftest():
    spec = importlib.util.spec_from_file_location("integration_conftest",
                                                  _INTEGRATION / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shared = _load_integration_conftest()
redis_url = _shared.redis_url
stack_factory = _shared.stack_factory
pytest_runtest_makereport = _shared.pytest_runtest_makereport  # stack logs on failure

from hostile import API_KEYS, UPLOAD_LIMIT, Backend  # noqa: E402  (needs the path above)
from integration_stack import Stack  # noqa: E402


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
