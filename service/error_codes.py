"""Every `error.code` the API answers, and every reason a job fails: the one definition of each.

The OpenAPI document lists these as an enum, so generated clients know them all; docs/API.md's
error table lists exactly these (a test compares the two). The engine owns the codes of its own
errors (nst_core.errors, a library without this service); the members for those refer to them.
"""

from __future__ import annotations

from enum import StrEnum

from nst_core.errors import (
    AnimatedImage,
    ImageTooLarge,
    InvalidImage,
    InvalidParams,
    UnsupportedImage,
)


class ErrorCode(StrEnum):
    """A stable, machine-readable reason for an error answer, grouped by HTTP status."""

    BAD_REQUEST = "bad_request"  # 400: a request Starlette itself refuses
    UNAUTHORIZED = "unauthorized"  # 401
    JOB_NOT_FOUND = "job_not_found"  # 404
    NOT_FOUND = "not_found"
    NO_PREVIEW = "no_preview"
    IMAGE_GONE = "image_gone"
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    JOB_NOT_SUCCEEDED = "job_not_succeeded"  # 409
    PREVIEW_NOT_READY = "preview_not_ready"
    PAYLOAD_TOO_LARGE = "payload_too_large"  # 413
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # 415
    INVALID_PARAMS = InvalidParams.code  # 422
    INVALID_REQUEST = "invalid_request"
    INVALID_MULTIPART = "invalid_multipart"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    EMPTY_FILE = "empty_file"
    TOO_MANY_STYLES = "too_many_styles"
    INVALID_IMAGE = InvalidImage.code
    UNSUPPORTED_IMAGE = UnsupportedImage.code
    IMAGE_TOO_LARGE = ImageTooLarge.code
    ANIMATED_IMAGE = AnimatedImage.code
    UNSUPPORTED_ASPECT_RATIO = "unsupported_aspect_ratio"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    INVALID_CURSOR = "invalid_cursor"
    INVALID_WEBHOOK = "invalid_webhook"
    INVALID_LAST_EVENT_ID = "invalid_last_event_id"
    TOO_MANY_ACTIVE_JOBS = "too_many_active_jobs"  # 429
    TOO_MANY_STREAMS = "too_many_streams"
    INTERNAL = "internal"  # 500
    QUEUE_FULL = "queue_full"  # 503
    UNAVAILABLE = "unavailable"
    BUSY = "busy"


class JobErrorCode(StrEnum):
    """Why a job ended `failed`: the `error.code` of its view, events and webhooks."""

    TIMEOUT = "timeout"  # ran past NST_TASK_SOFT_TIME_LIMIT, or its worker stopped past it
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # delivered NST_MAX_ATTEMPTS times without an ending
    INVALID_INPUT = "invalid_input"  # images or params the engine refused
    INTERNAL = "internal"  # a bug or a store fault: the worker logs it


def lua_job_error_codes() -> str:
    """The store scripts' `CODE_<NAME>` constants, generated so Lua and Python never differ."""
    return "".join(f"local CODE_{c.name} = '{c.value}'\n" for c in JobErrorCode)
