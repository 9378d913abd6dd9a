"""Shared test setup: the stack fixtures as a plugin, and the `processes` mark by directory."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures"]

# These suites start redis-server, API and worker processes; `make test-fast` leaves them out.
_PROCESS_SUITES = {"integration", "fault", "security", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of a process-starting suite `processes`."""
    root = Path(__file__).parent
    for item in items:
        if item.path.relative_to(root).parts[0] in _PROCESS_SUITES:
            item.add_marker(pytest.mark.processes)
