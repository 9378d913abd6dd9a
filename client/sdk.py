"""The synchronous client of the job API (httpx), for `nst submit` and other services.

Requests and answers are built and read in client/calls.py, shared with AsyncNstClient;
this module only sends them and sleeps between polls.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx

from api.schemas import JobList, JobView
from client import calls
from client.calls import DEFAULT_POLL, DEFAULT_URL, DEFAULT_WAIT_TIMEOUT, Call, Image, OnUpdate

T = TypeVar("T")


class NstClient:
    """Submit, poll, cancel and download style-transfer jobs; answers are the API's models."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, *,
                 timeout: float = 60.0, transport: httpx.BaseTransport | None = None) -> None:
        self.http = httpx.Client(**calls.client_options(base_url, api_key, timeout),
                                 transport=transport)

    def __enter__(self) -> NstClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _send(self, call: Call[T]) -> T:
        try:
            response = self.http.request(call.method, call.path, **call.options)
        except httpx.TransportError as e:
            raise calls.transport_error(e, self.http.base_url) from e
        return call.read(response)

    def _drive(self, steps: calls.Steps[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                return done.value
            reply = self._send(step) if isinstance(step, Call) else time.sleep(step)

    def submit(self, content: Image, styles: Image | Sequence[Image],
               params: dict[str, Any] | None = None, *,
               idempotency_key: str | None = None) -> JobView:
        """Create a job; returns its view (status `queued`, or the earlier job on a replay)."""
        return self._send(calls.submit(content, styles, params, idempotency_key))

    def get(self, job_id: str) -> JobView:
        """The job view."""
        return self._send(calls.get(job_id))

    def list(self, *, status: str | None = None, limit: int = 20,
             cursor: str | None = None) -> JobList:
        """One page of jobs, newest first, and the cursor of the next."""
        return self._send(calls.list_jobs(status, limit, cursor))

    def cancel(self, job_id: str) -> JobView:
        """Cancel the job (idempotent); returns its view."""
        return self._send(calls.cancel(job_id))

    def result(self, job_id: str, format: str = "png") -> bytes:
        """The result image bytes (NstApiError 409 until the job succeeded)."""
        return self._send(calls.result(job_id, format))

    def preview(self, job_id: str) -> bytes:
        """The latest preview image (PNG)."""
        return self._send(calls.preview(job_id))

    def wait(self, job_id: str, *, poll: float = DEFAULT_POLL,
             timeout: float | None = DEFAULT_WAIT_TIMEOUT,
             on_update: OnUpdate | None = None) -> JobView:
        """Poll until the job ends, calling `on_update` with each view; NstWaitTimeout after
        `timeout` seconds (None: no limit)."""
        return self._drive(calls.wait(job_id, poll, timeout, on_update))

    def stylize(self, content: Image, style: Image | Sequence[Image], *, format: str = "png",
                poll: float = DEFAULT_POLL, timeout: float | None = DEFAULT_WAIT_TIMEOUT,
                on_update: OnUpdate | None = None, **params: Any) -> bytes:
        """Submit with `params` (StyleParams fields), wait, return the image; NstJobFailed if
        the job did not succeed."""
        return self._drive(calls.stylize(content, style, format=format, poll=poll,
                                         timeout=timeout, on_update=on_update, params=params))


def stylize(content: Image, style: Image | Sequence[Image], *, base_url: str = DEFAULT_URL,
            api_key: str | None = None, **kwargs: Any) -> bytes:
    """NstClient(base_url, api_key).stylize(content, style, **kwargs) in one call."""
    with NstClient(base_url, api_key) as client:
        return client.stylize(content, style, **kwargs)
