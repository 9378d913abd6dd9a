"""The HTTP boundary's pydantic models: job views, lists and the one error shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from service.contract import JobProgress, JobStatus
from service.error_codes import ErrorCode, JobErrorCode


class ErrorBody(BaseModel):
    """What went wrong: a stable machine-readable code, a message, the offending field."""

    code: ErrorCode = Field(examples=[ErrorCode.INVALID_PARAMS])
    message: str
    field: str | None = Field(None, description="The request part or parameter at fault.")
    job_status: JobStatus | None = Field(None, description="On 409: the job's current status.")


class ErrorResponse(BaseModel):
    """Every error response of the API has this shape."""

    error: ErrorBody


class JobError(BaseModel):
    """Why a job failed."""

    code: JobErrorCode
    message: str


class JobLinks(BaseModel):
    """Where to go next."""

    self: str
    result: str
    preview: str
    cancel: str


class WebhookDelivery(BaseModel):
    """Delivery state of one webhook event of a job."""

    state: str = Field(description="pending | delivered | failed")
    attempts: int = 0
    last_status: int | None = Field(None, description="HTTP status of the last try, if any.")
    last_error: str | None = Field(None, description="Why the last try failed without a status.")
    delivered_at: datetime | None = None


class WebhookView(BaseModel):
    """Where the job's events are delivered, and how each delivery went."""

    url: str
    events: list[str]
    deliveries: dict[str, WebhookDelivery] = Field(
        description="Per event (start, progress, completed); progress shows the latest one.")


class JobView(BaseModel):
    """A job as clients see it."""

    id: str
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queue_seconds: float | None = Field(description="From creation to the first start.")
    run_seconds: float | None = Field(description="From the first start to the end (or now).")
    attempts: int = Field(description="Deliveries to a worker so far.")
    cancel_requested: bool
    queue_position: int | None = Field(
        None, ge=1, description="While queued: 1 = next to run, counting every tenant's queued "
                                "jobs; null otherwise.")
    progress: JobProgress | None
    error: JobError | None
    params: dict[str, Any] = Field(description="The effective parameters, defaults filled in.")
    expires_at: datetime | None = Field(
        None, description="When the record, the uploads and the result are removed.")
    webhook: WebhookView | None = None
    links: JobLinks


class JobList(BaseModel):
    """A page of jobs, newest first."""

    jobs: list[JobView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def timestamp(value: float) -> datetime:
    """Epoch seconds (as the job store keeps them) to an aware UTC datetime."""
    return datetime.fromtimestamp(value, UTC)


def maybe_timestamp(value: float | None) -> datetime | None:
    """`timestamp`, or None for a moment that has not come yet."""
    return None if value is None else timestamp(value)
