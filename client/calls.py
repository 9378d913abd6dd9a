"""What both clients send and how they read the answers, without any I/O.

Each operation is a Call (a request and the parser of its answer); wait and stylize are
generators of steps, a Call or seconds to sleep, that the sync and the async client drive with
their own send and sleep. So the two clients share all of the API's logic and differ only there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from api.schemas import ErrorResponse, JobList, JobView
from client.errors import NstApiError, NstError, NstJobFailed, NstTransportError, NstWaitTimeout
from service.contract import JobStatus

T = TypeVar("T")
Image = bytes | str | Path  # raw bytes or a file path
OnUpdate = Callable[[JobView], None]

DEFAULT_URL = "http://127.0.0.1:8000"
# A bound, so that a caller never hangs on a job stuck behind a stopped fleet, yet long enough for
# a full-size job (NST_TASK_HARD_TIME_LIMIT is 31 min) after a long queue; None waits for ever.
DEFAULT_WAIT_TIMEOUT = 3600.0
DEFAULT_POLL = 0.5


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request (httpx `request` arguments) and how to read its successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    options: dict[str, Any] = field(default_factory=dict)

    def read(self, response: httpx.Response) -> T:
        """The parsed answer; NstApiError for an error status, NstError for a malformed body."""
        if response.status_code >= 400:
            raise api_error(response)
        try:
            return self.parse(response)
        except ValidationError as e:
            raise NstError(f"{self.method} {self.path}: unexpected answer: {e}") from e


# Steps of a multi-call operation: a Call (the generator is sent its parsed answer) or seconds
# to sleep (sent None); the generator's return value is the operation's.
Steps = Generator["Call[Any] | float", Any, T]


def client_options(base_url: str, api_key: str | None, timeout: float) -> dict[str, Any]:
    """httpx.Client / AsyncClient arguments: the base URL, the bearer key, the timeout."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return {"base_url": base_url.rstrip("/"), "headers": headers, "timeout": timeout}


def transport_error(error: httpx.TransportError, base_url: httpx.URL) -> NstTransportError:
    """httpx's connection or timeout error as the SDK's (raise it `from` the original)."""
    return NstTransportError(f"cannot reach {base_url}: {str(error) or type(error).__name__}")


def api_error(response: httpx.Response) -> NstApiError:
    """The API's one error shape as an exception; a proxy's page becomes `http_error`."""
    try:
        body = ErrorResponse.model_validate_json(response.content).error
    except ValidationError:
        return _unknown_error(response)
    return NstApiError(response.status_code, body.code, body.message, body.field, body.job_status)


def _unknown_error(response: httpx.Response) -> NstApiError:
    # A newer server may answer a code this client's models do not list yet: keep its code.
    try:
        error = response.json()["error"]
        return NstApiError(response.status_code, str(error["code"]), str(error.get("message", "")),
                           error.get("field"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return NstApiError(response.status_code, "http_error", response.text[:200])


def _model(model: type[BaseModel]) -> Callable[[httpx.Response], Any]:
    return lambda response: model.model_validate_json(response.content)


def _content(response: httpx.Response) -> bytes:
    return response.content


def _images(images: Image | Sequence[Image]) -> list[Image]:
    return [images] if isinstance(images, bytes | str | Path) else list(images)


def _read(image: Image) -> bytes:
    return image if isinstance(image, bytes) else Path(image).read_bytes()


def submit(content: Image, styles: Image | Sequence[Image], params: dict[str, Any] | None = None,
           idempotency_key: str | None = None) -> Call[JobView]:
    """POST /v1/jobs: multipart content, styles and params."""
    files = [("content", ("content", _read(content)))]
    files += [("style", (f"style-{i}", _read(s))) for i, s in enumerate(_images(styles))]
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call("POST", "/v1/jobs", _model(JobView), {
        "files": files, "headers": headers, "data": {"params": json.dumps(params or {})}})


def get(job_id: str) -> Call[JobView]:
    """GET the job view."""
    return Call("GET", f"/v1/jobs/{job_id}", _model(JobView))


def list_jobs(status: str | None, limit: int, cursor: str | None) -> Call[JobList]:
    """GET one page of the tenant's jobs."""
    query = {k: v for k, v in {"status": status, "limit": limit, "cursor": cursor}.items()
             if v is not None}
    return Call("GET", "/v1/jobs", _model(JobList), {"params": query})


def cancel(job_id: str) -> Call[JobView]:
    """POST the cancel."""
    return Call("POST", f"/v1/jobs/{job_id}/cancel", _model(JobView))


def result(job_id: str, format: str = "png") -> Call[bytes]:
    """GET the result image."""
    return Call("GET", f"/v1/jobs/{job_id}/result", _content, {"params": {"format": format}})


def preview(job_id: str) -> Call[bytes]:
    """GET the latest preview."""
    return Call("GET", f"/v1/jobs/{job_id}/preview", _content)


def wait(job_id: str, poll: float, timeout: float | None,
         on_update: OnUpdate | None) -> Steps[JobView]:
    """Poll until the job ends; NstWaitTimeout after `timeout` seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        view: JobView = yield get(job_id)
        if on_update:
            on_update(view)
        if view.status.is_terminal:
            return view
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise NstWaitTimeout(view, timeout or 0.0)
        yield poll if left is None else min(poll, left)


def stylize(content: Image, style: Image | Sequence[Image], *, format: str, poll: float,
            timeout: float | None, on_update: OnUpdate | None,
            params: dict[str, Any]) -> Steps[bytes]:
    """Submit, wait, download. A job that outlives the wait is canceled: only it knew the id."""
    job: JobView = yield submit(content, style, params)
    try:
        final = yield from wait(job.id, poll, timeout, on_update)
    except NstWaitTimeout:
        yield cancel(job.id)  # else it would hold one of the tenant's active-job slots
        raise
    if final.status != JobStatus.SUCCEEDED:
        raise NstJobFailed(final)
    return (yield result(job.id, format))
