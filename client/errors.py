"""The SDK's errors: everything it raises is an NstError, so callers need one `except`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.schemas import JobView


class NstError(Exception):
    """Base of every error the clients raise."""


class NstApiError(NstError):
    """An error answer of the API, with its status, stable code and offending field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 job_status: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field
        self.job_status = job_status  # on 409: the job's status then


class NstTransportError(NstError):
    """The API could not be reached or did not answer in time (httpx's error is the cause)."""


class NstWaitTimeout(NstError, TimeoutError):
    """wait() ran out of time; the job goes on (stylize() cancels its own)."""

    def __init__(self, view: JobView, timeout: float) -> None:
        super().__init__(f"job {view.id} is still {view.status} after {timeout:g} s")
        self.view = view


class NstJobFailed(NstError):
    """The job ended failed or canceled where a result was wanted (stylize)."""

    def __init__(self, view: JobView) -> None:
        why = f": {view.error.code}: {view.error.message}" if view.error else ""
        super().__init__(f"job {view.id} {view.status}{why}")
        self.view = view
