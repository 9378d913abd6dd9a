"""The /v1/jobs routes: create, get, list, result, preview, cancel."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import CeleryDep, ResultsDep, SettingsDep, StoreDep, TenantDep
from api.errors import ApiError, error_docs
from api.openapi import schema_ref
from api.schemas import JobError, JobLinks, JobList, JobView, WebhookView, maybe_timestamp, timestamp
from api.uploads import JobForm, read_job_form
from api.validation import parse_params, parse_webhook, prepare_images, request_digest
from nst_core.image import MEDIA_TYPES, decode_image, encode_image
from nst_core.params import StyleParams
from service.contract import JobStatus
from service.error_codes import ErrorCode
from service.jobstore import Job, JobStore, StoreError, new_job_id
from service.queue import enqueue
from service.results import NotStored, upload_key

log = logging.getLogger("nst.api")
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Annotated[str, Path(description="The id returned at creation.", max_length=64)]
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
RESULT_MAX_AGE = 86400  # seconds a client may cache a result (less near the job's expiry)

# Models of multipart parts the route parses itself; api.openapi adds them to the document.
FORM_MODELS = (StyleParams,)

# The multipart body, described by hand because the route reads the stream itself. `params` is a
# JSON part (OpenAPI 3.1 `encoding`), so client generators type it as StyleParams, not a string.
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["content", "style"],
                    "properties": {
                        "content": {"type": "string", "format": "binary",
                                    "description": "The photo to repaint (PNG, JPEG, WebP...)."},
                        "style": {"type": "array", "minItems": 1,
                                  "items": {"type": "string", "format": "binary"},
                                  "description": "One or more style images (repeat the part)."},
                        "params": {**schema_ref(StyleParams),
                                   "description": "StyleParams as JSON, e.g. "
                                                  '{"size": 512, "preset": "fast"}.'},
                        "webhook": {"type": "string", "format": "uri",
                                    "description": "An http(s) URL to POST signed events to."},
                        "webhook_events": {"type": "string",
                                           "description": "Comma-separated: start, progress, "
                                                          "completed (default completed)."},
                    },
                },
                "encoding": {"params": {"contentType": "application/json"}},
            }
        },
    }
}


def job_view(job: Job, queue_position: int | None = None) -> JobView:
    """The client's view of a job record; `queue_position` from JobStore.queue_positions."""
    now = time.time()
    first_end = job.started_at or job.finished_at or now
    base = f"/v1/jobs/{job.id}"
    return JobView(
        id=job.id,
        status=job.status,
        created_at=timestamp(job.created_at),
        started_at=maybe_timestamp(job.started_at),
        finished_at=maybe_timestamp(job.finished_at),
        queue_seconds=round(first_end - job.created_at, 3),
        run_seconds=round((job.finished_at or now) - job.started_at, 3) if job.started_at else None,
        attempts=job.attempts,
        cancel_requested=job.cancel_requested,
        queue_position=queue_position,
        progress=job.progress,
        error=JobError(code=job.error_code, message=job.error_message or "")
        if job.error_code else None,
        params=effective_params(job.params),
        expires_at=maybe_timestamp(job.expires_at),
        webhook=WebhookView(url=job.webhook, events=list(job.webhook_events),
                            deliveries=job.webhook_deliveries) if job.webhook else None,
        links=JobLinks(self=base, result=f"{base}/result", preview=f"{base}/preview",
                       cancel=f"{base}/cancel"),
    )


def queued_views(store: JobStore, jobs: list[Job]) -> list[JobView]:
    """Views of `jobs` with the queue position of the queued ones (no round trip when none is)."""
    positions = store.queue_positions([j.id for j in jobs if j.status == JobStatus.QUEUED])
    return [job_view(j, positions.get(j.id)) for j in jobs]


def effective_params(params: dict) -> dict:
    """The stored params with the schedule the run uses filled in (scales and iterations)."""
    try:
        schedule = StyleParams.model_validate(params).schedule()
    except ValueError:  # a record written by another version: show it as stored
        return params
    return {**params, "scales": list(schedule.sizes), "iterations": list(schedule.iterations)}


def owned_job(store: JobStore, tenant: str, job_id: str) -> Job:
    """The caller's job; someone else's job is indistinguishable from a missing one (404)."""
    return owned(store.get(job_id) if _JOB_ID.match(job_id) else None, tenant)


def owned(job: Job | None, tenant: str) -> Job:
    """`job` if the caller owns it, else 404 (a missing job looks the same)."""
    if job is None or job.tenant != tenant:
        raise ApiError(404, ErrorCode.JOB_NOT_FOUND, "no such job", field="id")
    return job


@router.post(
    "",
    status_code=202,
    response_model=JobView,
    summary="Submit a style-transfer job",
    openapi_extra=_CREATE_BODY,
    responses={
        200: {"model": JobView, "description": "An idempotent replay: the earlier job."},
        **error_docs(401, 413, 415, 422, 429, 503),
    },
)
async def create_job(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    results: ResultsDep,
    celery: CeleryDep,
    tenant: TenantDep,
    idempotency_key: Annotated[str | None, Header(
        description="Retry-safe creation: the same key and body return the same job.")] = None,
) -> JSONResponse:
    """Upload a content image, style images and params; the job is queued at once (202)."""
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise ApiError(422, ErrorCode.INVALID_IDEMPOTENCY_KEY,
                       "Idempotency-Key must be 1-255 printable ASCII characters",
                       field="Idempotency-Key")
    form = await read_job_form(request, settings)
    # Decoding images and talking to Redis and the store block: keep them off the event loop.
    return await run_in_threadpool(
        _submit, form, tenant, idempotency_key, settings, store, results, celery
    )


def _submit(form: JobForm, tenant: str, idempotency_key: str | None, settings: SettingsDep,
            store: JobStore, results: ResultsDep, celery: CeleryDep) -> JSONResponse:
    params = parse_params(form.params, len(form.styles), settings)
    webhook = parse_webhook(form.webhook, form.webhook_events, settings)
    digest = request_digest(params, form.content, form.styles)
    if idempotency_key and (earlier := store.find_idempotent(tenant, idempotency_key, digest)):
        return _replay(store, owned_job(store, tenant, earlier))  # before decoding: a retry is free

    content, styles = prepare_images(form.content, form.styles, params, settings)
    job_id = new_job_id()
    inputs = {"content": upload_key(job_id, "content"),
              "styles": [upload_key(job_id, f"style-{i}") for i in range(len(styles))]}
    _store_inputs(results, inputs, content, styles)
    try:
        job = store.create(
            job_id, tenant, params.model_dump(mode="json"), inputs,
            ttl=settings.job_ttl_seconds,
            max_active=settings.max_active_jobs_per_tenant,
            max_queue=settings.max_queue_depth,
            idempotency=(idempotency_key, digest) if idempotency_key else None,
            webhook=webhook,
        )
    except StoreError:  # over a limit or an idempotency conflict: drop the uploads
        results.delete_prefix(f"uploads/{job_id}")
        raise
    if job is None or job.id != job_id:  # a concurrent request with the same key won the race
        results.delete_prefix(f"uploads/{job_id}")
        return _replay(store, owned(job, tenant))
    _publish(celery, store, settings, job_id)
    return JSONResponse(queued_views(store, [job])[0].model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/v1/jobs/{job_id}"})


def _publish(celery: CeleryDep, store: JobStore, settings: SettingsDep, job_id: str) -> None:
    """Send the job to the workers. The job exists now, so a failure still answers 202: the
    record stays in the `unsent` set and a worker's reaper publishes it within seconds."""
    try:
        enqueue(celery, settings.queue, job_id)
        store.mark_sent(job_id)
    except Exception:  # broker or Redis unreachable: the reaper sends it (a duplicate is a no-op)
        log.warning("publish failed; the reaper will send the job", extra={"job_id": job_id},
                    exc_info=True)


def _store_inputs(results: ResultsDep, inputs: dict, content: bytes, styles: list[bytes]) -> None:
    results.put(inputs["content"], content)
    for key, data in zip(inputs["styles"], styles, strict=True):
        results.put(key, data)


def _replay(store: JobStore, job: Job) -> JSONResponse:
    return JSONResponse(queued_views(store, [job])[0].model_dump(mode="json"), status_code=200,
                        headers={"Location": f"/v1/jobs/{job.id}", "Idempotent-Replayed": "true"})


@router.get("", response_model=JobList, summary="List your jobs, newest first",
            responses=error_docs(401, 422, 503))
def list_jobs(
    store: StoreDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=64, description="From next_cursor.")] = None,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
) -> JobList:
    """The caller's jobs, newest first, a page at a time."""
    jobs, last = store.list(tenant, limit=limit, before=_decode_cursor(cursor), status=status)
    return JobList(jobs=queued_views(store, jobs),
                   next_cursor=_encode_cursor(last) if last else None)


def _encode_cursor(job_id: str) -> str:
    # The last job's id: meaningful only in its tenant's index, and it leaks no global count.
    return base64.urlsafe_b64encode(bytes.fromhex(job_id)).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise ApiError(422, ErrorCode.INVALID_CURSOR, "cursor is not one this API returned", field="cursor")
    return raw.hex()


@router.get("/{job_id}", response_model=JobView, summary="Get a job's status and progress",
            responses=error_docs(401, 404, 422, 503))
def get_job(job_id: JobId, store: StoreDep, tenant: TenantDep) -> JobView:
    """The job view: status, progress, timestamps, error, links."""
    return queued_views(store, [owned_job(store, tenant, job_id)])[0]


# A binary schema per media type: without it client generators drop the body (issue 10).
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_RESULT_RESPONSES = {200: {"content": {t: _BINARY for t in MEDIA_TYPES.values()},
                           "description": "The image."},
                     304: {"description": "Not modified (If-None-Match matched the ETag)."}}
_PREVIEW_RESPONSES = {200: {"content": {"image/png": _BINARY}, "description": "The preview."}}


@router.get("/{job_id}/result", response_class=Response, summary="Download the result image",
            responses={**_RESULT_RESPONSES, **error_docs(401, 404, 409, 422, 503)})
def get_result(
    job_id: JobId,
    store: StoreDep,
    results: ResultsDep,
    tenant: TenantDep,
    format: Annotated[Literal["png", "jpeg", "webp"], Query(description="Image format.")] = "png",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The stylized image once the job succeeded; 409 with the current status before that."""
    job = owned_job(store, tenant, job_id)
    if job.status != JobStatus.SUCCEEDED or not job.result_key:
        raise ApiError(409, ErrorCode.JOB_NOT_SUCCEEDED, f"the job is {job.status}; no result",
                       job_status=job.status)
    etag = f'"{job.result_etag}-{format}"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={_max_age(job)}"}
    if if_none_match and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    data = _read(results, job.result_key)
    if format != "png":
        data = encode_image(decode_image(data, max_pixels=2**31), format)
    headers["Content-Disposition"] = f'inline; filename="{job.id}.{format}"'
    return Response(data, media_type=MEDIA_TYPES[format], headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): `*`, or W/ ignored."""
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in (t.removeprefix("W/") for t in tags)


@router.get("/{job_id}/preview", response_class=Response,
            summary="Download the latest intermediate image",
            responses={**_PREVIEW_RESPONSES, **error_docs(401, 404, 409, 422, 503)})
def get_preview(job_id: JobId, store: StoreDep, results: ResultsDep, tenant: TenantDep) -> Response:
    """The most recent preview the worker stored (PNG); 409 while there is none yet."""
    job = owned_job(store, tenant, job_id)
    if not job.preview_key:
        if job.finished:
            raise ApiError(404, ErrorCode.NO_PREVIEW, "this job stored no preview", field="id")
        raise ApiError(409, ErrorCode.PREVIEW_NOT_READY, f"the job is {job.status}; no preview yet",
                       job_status=job.status)
    return Response(_read(results, job.preview_key), media_type="image/png",
                    headers={"Cache-Control": "no-store"})


def _max_age(job: Job) -> int:
    """A day, but never past the job's expiry (then the result is gone)."""
    left = job.expires_at - time.time() if job.expires_at else RESULT_MAX_AGE
    return max(0, min(RESULT_MAX_AGE, int(left)))


def _read(results: ResultsDep, key: str) -> bytes:
    try:
        return results.get(key)
    except NotStored as e:
        raise ApiError(404, ErrorCode.IMAGE_GONE, "the image is no longer stored") from e


@router.post("/{job_id}/cancel", response_model=JobView, summary="Cancel a job (idempotent)",
             responses={202: {"model": JobView, "description": "Running: it stops within an "
                                                             "iteration."},
                        **error_docs(401, 404, 422, 503)})
def cancel_job(job_id: JobId, store: StoreDep, tenant: TenantDep) -> JSONResponse:
    """A queued job is canceled now (200); a running one is asked to stop (202)."""
    owned_job(store, tenant, job_id)
    outcome, job = store.cancel(job_id)
    job = owned(job, tenant)  # it may have expired in between
    return JSONResponse(job_view(job).model_dump(mode="json"),
                        status_code=202 if outcome == JobStatus.RUNNING and not job.finished else 200)
