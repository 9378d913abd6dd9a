"""Reading the job-creation multipart body as a stream, with a hard byte limit.

The limit is enforced while the bytes arrive (also for chunked bodies without Content-Length),
so an oversized request is refused before it is buffered; FastAPI's UploadFile would only let us
look at the size after the whole body was spooled to disk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.errors import ApiError
from service.error_codes import ErrorCode
from service.settings import Settings

PARAMS_PART_BYTES = 64 * 1024  # the `params` JSON field
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers


@dataclass
class JobForm:
    """The parts of a job-creation request: raw bytes, not yet validated as images."""

    content: bytes = b""
    styles: list[bytes] = field(default_factory=list)
    params: str | None = None
    webhook: str | None = None
    webhook_events: str | None = None


def body_limit(settings: Settings) -> int:
    """The largest request body: every allowed image at its limit, plus params and framing."""
    return (settings.max_styles + 1) * settings.max_upload_bytes + PARAMS_PART_BYTES + (
        MULTIPART_OVERHEAD
    )


def _too_large(limit: int, what: str = "request body", field: str | None = None) -> ApiError:
    return ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{what} is over the {limit}-byte limit", field=field)


class CloseWatch:
    """Whether the body's closing delimiter arrived, however long the epilogue after it.

    The multipart parser accepts a body cut short and drops its unfinished last part;
    a request is complete only if its closing delimiter arrived.
    """

    def __init__(self, content_type: str) -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary", b"")
        self.delimiter = b"--" + boundary + b"--" if boundary else b""
        self.closed, self.seen, self._tail = False, 0, b""

    def feed(self, chunk: bytes) -> None:
        """Look for the delimiter, also across chunk borders."""
        self.seen += len(chunk)
        if self.delimiter and not self.closed:
            window = self._tail + chunk
            self.closed = self.delimiter in window
            self._tail = window[-len(self.delimiter):]


async def _limited(request: Request, limit: int, watch: CloseWatch) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        watch.feed(chunk)
        if watch.seen > limit:
            raise _too_large(limit)
        yield chunk


async def read_job_form(request: Request, settings: Settings) -> JobForm:
    """Parse `content`, `style` (repeated) and `params`; refuse anything else or too big."""
    media_type, _ = parse_options_header(request.headers.get("content-type", ""))
    if media_type.lower() != b"multipart/form-data":  # media types are case-insensitive
        raise ApiError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send multipart/form-data")
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        # We do not decode compressed bodies; reading one as identity would store garbage.
        raise ApiError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the body without Content-Encoding")
    limit = body_limit(settings)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    watch = CloseWatch(request.headers["content-type"])
    parser = MultiPartParser(
        request.headers,
        _limited(request, limit, watch),
        max_files=settings.max_styles + 2,  # one over the limit still gets a precise error
        max_fields=6,
        max_part_size=PARAMS_PART_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise ApiError(422, ErrorCode.INVALID_MULTIPART, e.message) from e
    if watch.seen and not watch.closed:  # an empty body: missing parts, below
        await form.close()
        raise ApiError(422, ErrorCode.INVALID_MULTIPART,
                       "the multipart body ended before its closing boundary")
    try:
        return await _collect(form.multi_items(), settings)
    finally:
        await form.close()


async def _collect(items: list[tuple[str, str | UploadFile]], settings: Settings) -> JobForm:
    parts = JobForm()
    for name, value in items:
        if name == "params":
            if not isinstance(value, str) or parts.params is not None:
                raise ApiError(422, ErrorCode.INVALID_PARAMS, "params must be one JSON text field",
                               field="params")
            parts.params = value
        elif name in ("webhook", "webhook_events"):
            if not isinstance(value, str) or getattr(parts, name) is not None:
                raise ApiError(422, ErrorCode.INVALID_WEBHOOK, f"{name} must be one text field", field=name)
            setattr(parts, name, value)
        elif name in ("content", "style"):
            if not isinstance(value, UploadFile):
                raise ApiError(422, ErrorCode.INVALID_IMAGE, f"{name} must be a file part", field=name)
            data = await value.read(settings.max_upload_bytes + 1)
            if len(data) > settings.max_upload_bytes:
                raise _too_large(settings.max_upload_bytes, f"{name} file", field=name)
            if name == "content":
                if parts.content:
                    raise ApiError(422, ErrorCode.INVALID_REQUEST, "send exactly one content file",
                                   field="content")
                if not data:
                    raise ApiError(422, ErrorCode.EMPTY_FILE, "the content file is empty", field="content")
                parts.content = data
            else:
                if not data:
                    raise ApiError(422, ErrorCode.EMPTY_FILE, "a style file is empty", field="style")
                parts.styles.append(data)
        else:
            raise ApiError(422, ErrorCode.UNKNOWN_FIELD, f"unexpected form field {name[:40]!r}",
                           field=name[:40])
    if not parts.content:
        raise ApiError(422, ErrorCode.MISSING_FIELD, "a `content` image file is required", field="content")
    if not parts.styles:
        raise ApiError(422, ErrorCode.MISSING_FIELD, "at least one `style` image file is required",
                       field="style")
    if len(parts.styles) > settings.max_styles:
        raise ApiError(422, ErrorCode.TOO_MANY_STYLES, f"at most {settings.max_styles} style images",
                       field="style")
    return parts
