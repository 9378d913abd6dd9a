"""Serving the app with uvicorn, with the connection limits taken from the settings.

uvicorn arms its keep-alive timer only after a response, so a connection that never sends a
byte is held forever (a few hundred of them exhaust the file limit). The protocols below arm the
same timer as soon as a connection is made; any byte received disarms it, as uvicorn does.
Slow senders (a header a byte at a time) are the reverse proxy's to cut: see docs/API.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.settings import Settings


class _IdleTimeout:
    """Close a new connection that sends nothing within the keep-alive timeout."""

    loop: asyncio.AbstractEventLoop
    timeout_keep_alive: float
    timeout_keep_alive_task: asyncio.TimerHandle | None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)  # type: ignore[attr-defined]


class IdleClosingH11(_IdleTimeout, H11Protocol):
    """uvicorn's h11 protocol that also times out connections that never send a request."""


class IdleClosingHttpTools(_IdleTimeout, HttpToolsProtocol):
    """uvicorn's httptools protocol that also times out connections that never send a request."""


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Run uvicorn on the app, in `workers` processes, until stopped."""
    options: dict[str, Any] = {
        "limit_concurrency": settings.limit_concurrency,  # beyond it: 503 at once, no queueing
        "timeout_keep_alive": settings.keep_alive_seconds,
        "backlog": settings.limit_concurrency,
    }
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_config=None,
                access_log=False, http=IdleClosingHttpTools, **options)
