"""The browser suite's page wrapper: Debian's chromium, and every non-loopback request aborted."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("NST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--no-default-browser-check", "--disable-sync",
                 "--metrics-recording-only", "--disable-domain-reliability"]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class OfflinePage:
    """A page in a fresh context whose non-loopback requests are aborted and listed."""

    def __init__(self, browser, downloads: bool = True) -> None:
        self.context = browser.new_context(accept_downloads=downloads,
                                           viewport={"width": 1280, "height": 900})
        self.left_loopback: list[str] = []
        self.requests: list[str] = []
        self.responses: list[str] = []
        self.failed: dict[str, str] = {}  # url -> why (net::ERR_BLOCKED_BY_CSP, ...)
        self.console_errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("response", lambda r: self.responses.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.setdefault(r.url, r.failure or ""))
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    def _route(self, route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOOPBACK:
            self.left_loopback.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def close(self) -> None:
        self.context.close()
