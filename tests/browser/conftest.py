"""Fixtures of the browser suite: Debian's chromium driven by Playwright against real stacks.

The stacks come from tests/support (a private redis-server on a free loopback port, real API
and worker processes).
No browser is ever downloaded: Playwright launches /usr/bin/chromium (apt package `chromium`).
Every request to a host other than the loopback is aborted and recorded, so a test can assert
that a page works offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.browser_page import CHROMIUM, CHROMIUM_ARGS, OfflinePage
from tests.support.stack import Stack

if not Path(CHROMIUM).is_file():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="session")
def keyed_stack(stack_factory) -> Stack:
    """API keys configured (tenants from tests.support.stack.KEYS), one worker."""
    s = stack_factory("browser", NST_MAX_ACTIVE_JOBS_PER_TENANT="5").start_api()
    s.start_worker()
    return s


@pytest.fixture(scope="session")
def open_stack(stack_factory) -> Stack:
    """Open mode (no keys), no worker: the page's form errors and the offline docs."""
    return stack_factory("browser-open", NST_API_KEYS="", NST_OPEN_MODE="true").start_api()


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def offline(browser) -> Iterator[OfflinePage]:
    p = OfflinePage(browser)
    yield p
    p.close()
