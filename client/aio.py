"""The asyncio client of the job API: NstClient's methods as coroutines, on httpx.AsyncClient.

Requests and answers are built and read in client/calls.py, shared with NstClient; only the
send and the sleep here are awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx

from api.schemas import JobList, JobView
from client import calls
from client.calls import DEFAULT_POLL, DEFAULT_URL, DEFAULT_WAIT_TIMEOUT, Call, Image, OnUpdate

T = TypeVar("T")


class AsyncNstClient:
    """Submit, poll, cancel and download style-transfer jobs without blocking the event loop."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, *,
                 timeout: float = 60.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = httpx.AsyncClient(**calls.client_options(base_url, api_key, timeout),
                                      transport=transport)

    async def __aenter__(self) -> AsyncNstClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self.http.request(call.method, call.path, **call.options)
        except httpx.TransportError as e:
            raise calls.transport_error(e, self.http.base_url) from e
        return call.read(response)

    async def _drive(self, steps: calls.Steps[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                return done.value
            reply = await (self._send(step) if isinstance(step, Call) else asyncio.sleep(step))

    async def submit(self, content: Image, styles: Image | Sequence[Image],
                     params: dict[str, Any] | None = None, *,
                     idempotency_key: str | None = None) -> JobView:
        """Create a job; returns its view (status `queued`, or the earlier job on a replay)."""
        return await self._send(calls.submit(content, styles, params, idempotency_key))

    async def get(self, job_id: str) -> JobView:
        """The job view."""
        return await self._send(calls.get(job_id))

    async def list(self, *, status: str | None = None, limit: int = 20,
                   cursor: str | None = None) -> JobList:
        """One page of jobs, newest first, and the cursor of the next."""
        return await self._send(calls.list_jobs(status, limit, cursor))

    async def cancel(self, job_id: str) -> JobView:
        """Cancel the job (idempotent); returns its view."""
        return await self._send(calls.cancel(job_id))

    async def result(self, job_id: str, format: str = "png") -> bytes:
        """The result image bytes (NstApiError 409 until the job succeeded)."""
        return await self._send(calls.result(job_id, format))

    async def preview(self, job_id: str) -> bytes:
        """The latest preview image (PNG)."""
        return await self._send(calls.preview(job_id))

    async def wait(self, job_id: str, *, poll: float = DEFAULT_POLL,
                   timeout: float | None = DEFAULT_WAIT_TIMEOUT,
                   on_update: OnUpdate | None = None) -> JobView:
        """Poll until the job ends, calling `on_update` with each view; NstWaitTimeout after
        `timeout` seconds (None: no limit)."""
        return await self._drive(calls.wait(job_id, poll, timeout, on_update))

    async def stylize(self, content: Image, style: Image | Sequence[Image], *,
                      format: str = "png", poll: float = DEFAULT_POLL,
                      timeout: float | None = DEFAULT_WAIT_TIMEOUT,
                      on_update: OnUpdate | None = None, **params: Any) -> bytes:
        """Submit with `params` (StyleParams fields), wait, return the image; NstJobFailed if
        the job did not succeed."""
        return await self._drive(calls.stylize(content, style, format=format, poll=poll,
                                               timeout=timeout, on_update=on_update,
                                               params=params))
