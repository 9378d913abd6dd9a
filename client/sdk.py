"""A small synchronous client of the job API (httpx), for `nst submit` and other services."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from service.contract import JobStatus

Image = bytes | str | Path  # raw bytes or a file path


class NstApiError(Exception):
    """An error answer of the API, with its status, stable code and offending field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field


class NstClient:
    """Submit, poll, cancel and download style-transfer jobs."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                 transport=transport)

    def __enter__(self) -> NstClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": "http_error", "message": response.text[:200]}
            raise NstApiError(response.status_code, err.get("code", "error"),
                              err.get("message", ""), err.get("field"))
        return response

    def submit(self, content: Image, styles: list[Image], params: dict[str, Any] | None = None,
               *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Create a job; returns its view (status `queued`, or the earlier job on a replay)."""
        files = [("content", ("content", _read(content)))]
        files += [("style", (f"style-{i}", _read(s))) for i, s in enumerate(styles)]
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/v1/jobs", files=files, headers=headers,
                          data={"params": json.dumps(params or {})}).json()

    def get(self, job_id: str) -> dict[str, Any]:
        """The job view."""
        return self._call("GET", f"/v1/jobs/{job_id}").json()

    def list(self, *, status: str | None = None, limit: int = 20,
             cursor: str | None = None) -> dict[str, Any]:
        """One page of jobs, newest first: {"jobs": [...], "next_cursor": ...}."""
        query = {k: v for k, v in {"status": status, "limit": limit, "cursor": cursor}.items()
                 if v is not None}
        return self._call("GET", "/v1/jobs", params=query).json()

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job (idempotent); returns its view."""
        return self._call("POST", f"/v1/jobs/{job_id}/cancel").json()

    def result(self, job_id: str, format: str = "png") -> bytes:
        """The result image bytes (raises NstApiError 409 until the job succeeded)."""
        return self._call("GET", f"/v1/jobs/{job_id}/result", params={"format": format}).content

    def preview(self, job_id: str) -> bytes:
        """The latest preview image (PNG)."""
        return self._call("GET", f"/v1/jobs/{job_id}/preview").content

    def wait(self, job_id: str, *, poll: float = 0.5, timeout: float | None = None,
             on_update: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until the job ends; calls `on_update` with each view; returns the final view."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            view = self.get(job_id)
            if on_update:
                on_update(view)
            if JobStatus(view["status"]).is_terminal:
                return view
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {view['status']}")
            time.sleep(poll)


def _read(image: Image) -> bytes:
    return image if isinstance(image, bytes) else Path(image).read_bytes()
