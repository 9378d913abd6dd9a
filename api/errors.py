"""One error shape everywhere: `{"error": {"code", "message", "field"}}`, whatever raised it."""

from __future__ import annotations

import logging
import re

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorBody, ErrorResponse
from nst_core.errors import NstError
from service.contract import JobStatus
from service.error_codes import ErrorCode
from service.jobstore import (
    IdempotencyConflict,
    InvalidCursor,
    QueueFull,
    StoreError,
    TenantLimit,
)

log = logging.getLogger("nst.api")

# Codes for the errors Starlette and FastAPI raise themselves: an unknown route, a wrong method,
# a body FastAPI cannot parse, an unreadable static file. Any other status gets its class's code.
_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
}


class ApiError(Exception):
    """An error answer: HTTP status, stable code, message, offending field, extra headers."""

    def __init__(self, status: int, code: ErrorCode, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, job_status: JobStatus | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}
        self.job_status = job_status


def error_response(status: int, code: ErrorCode, message: str, *, field: str | None = None,
                   headers: dict[str, str] | None = None,
                   job_status: JobStatus | None = None) -> JSONResponse:
    """The JSON response for an error."""
    body = ErrorResponse(error=ErrorBody(code=code, message=message, field=field,
                                         job_status=job_status))
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status,
                        headers=headers)


def _api_error(_: Request, e: ApiError) -> JSONResponse:
    return error_response(e.status, e.code, e.message, field=e.field, headers=e.headers,
                          job_status=e.job_status)


def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
    fallback = ErrorCode.INTERNAL if e.status_code >= 500 else ErrorCode.BAD_REQUEST
    code = _HTTP_CODES.get(e.status_code, fallback)
    headers = dict(getattr(e, "headers", None) or {})
    if e.status_code == 405:  # GET and POST of one path are separate routes: list both
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(e.status_code, code, str(e.detail), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    # The OpenAPI document is the public, cached list of paths and their methods.
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), request.url.path):
            return sorted(m.upper() for m in operations)
    return []


def _validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
    first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    return error_response(422, ErrorCode.INVALID_REQUEST, str(first.get("msg")),
                          field=".".join(loc) or None)


def _engine_error(request: Request, e: NstError) -> JSONResponse:
    try:
        code = ErrorCode(e.code)
    except ValueError:  # an engine failure no request can cause (weights_not_found): a bug here
        return _crash(request, e)
    return error_response(422, code, e.message, field=e.field)


def _store_refusal(request: Request, e: StoreError) -> JSONResponse:
    retry = {"Retry-After": str(request.app.state.settings.retry_after_seconds)}
    if isinstance(e, TenantLimit):
        return error_response(429, e.code, e.message, headers=retry)
    if isinstance(e, QueueFull):
        return error_response(503, e.code, e.message, headers=retry)
    field = {IdempotencyConflict: "Idempotency-Key", InvalidCursor: "cursor"}.get(type(e))
    return error_response(422, e.code, e.message, field=field)


def _unavailable(_: Request, e: Exception) -> JSONResponse:
    log.warning("backend unavailable", extra={"error": type(e).__name__})
    return error_response(503, ErrorCode.UNAVAILABLE, "the job store or queue is unreachable; retry later",
                          headers={"Retry-After": "5"})


def _crash(_: Request, e: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=e)
    return error_response(500, ErrorCode.INTERNAL, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception type to the one error shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(NstError, _engine_error)
    app.add_exception_handler(StoreError, _store_refusal)
    for exc in (redis.ConnectionError, redis.TimeoutError, OperationalError):
        app.add_exception_handler(exc, _unavailable)
    app.add_exception_handler(Exception, _crash)


# OpenAPI `responses=` entries, so /docs lists the errors each route can answer.
def error_docs(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI response entries with the error model for the given statuses."""
    texts = {
        401: "Missing or wrong API key.",
        404: "No such job for this caller.",
        409: "The job is not in a state that allows this (see error.job_status).",
        413: "The body or an uploaded file is over the size limit.",
        415: "The body is not multipart/form-data.",
        422: "The request is invalid: error.code says why, error.field where.",
        429: "Over a per-caller limit: unfinished jobs or open streams (see Retry-After).",
        500: "An unexpected failure (a bug; the API logs it).",
        503: "At capacity or the backend is unreachable (see Retry-After).",
    }
    return {s: {"model": ErrorResponse, "description": texts.get(s, "Error.")} for s in statuses}
