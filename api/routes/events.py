"""GET /v1/jobs/{id}/events: the job's status and progress as Server-Sent Events.

Read from the job's Redis Stream (written by the job store's transitions), so any API process
serves any stream, `Last-Event-ID` resumes where a client left off, and a Redis restart is a gap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import redis
import redis.asyncio
from fastapi import APIRouter, Depends, Header, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import SettingsDep, StoreDep, get_tenant
from api.errors import ApiError, error_docs
from api.routes.jobs import JobId, owned_job
from api.streams import release_slot, renew_slot, slots_key, take_slot
from service import connections
from service.contract import JobStatus
from service.error_codes import ErrorCode
from service.jobstore import JobStore
from service.settings import Settings

log = logging.getLogger("nst.api")
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

READ_BLOCK_MS = 5000  # one blocking read; the slot is renewed between reads
REDIS_RETRY_SECONDS = 1.0
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_bearer = HTTPBearer(auto_error=False, description="An API key from NST_API_KEYS.")


def stream_tenant(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[str | None, Query(
        max_length=256, description="The API key, for browsers' EventSource (no headers); "
                                    "only on this route.")] = None,
) -> str:
    """The caller's tenant from the Authorization header or, failing that, `access_token`."""
    if credentials is None and access_token and not settings.open_mode:
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=access_token)
    return get_tenant(settings, credentials)


def _event(sid: str, fields: dict[str, str]) -> ServerSentEvent:
    error = ({"code": fields["error_code"], "message": fields.get("error_message", "")}
             if fields.get("error_code") else None)
    data = {"status": fields["status"], "error": error,
            "progress": json.loads(fields["progress"]) if fields.get("progress") else None}
    return ServerSentEvent(data=json.dumps(data), event=fields["kind"], id=sid)


def _terminal(fields: dict[str, Any]) -> bool:
    return fields["kind"] == "status" and JobStatus(fields["status"]).is_terminal


async def _events(r: redis.asyncio.Redis, store: JobStore, job_id: str, cursor: str,
                  slot: tuple[str, str]) -> AsyncIterator[ServerSentEvent]:
    key, job_key = store.events_key(job_id), store.events_key(job_id).removesuffix(":events")
    try:
        while True:
            try:
                await renew_slot(r, *slot)
                replies = await r.xread({key: cursor}, count=100, block=READ_BLOCK_MS)
                if not replies and not await r.exists(job_key):
                    return  # deleted or expired meanwhile
            except (redis.ConnectionError, redis.TimeoutError):
                log.warning("event stream: redis unreachable; retrying", extra={"job_id": job_id})
                await asyncio.sleep(REDIS_RETRY_SECONDS)  # the client sees a gap, not an error
                continue
            for sid, fields in replies[0][1] if replies else ():
                cursor = sid
                yield _event(sid, fields)
                if _terminal(fields):
                    return
    finally:
        with anyio.CancelScope(shield=True):  # runs when the client hangs up, too
            try:
                await release_slot(r, *slot)
            finally:
                await r.aclose()


@router.get("/{job_id}/events", summary="Stream a job's status and progress (Server-Sent Events)",
            response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`status` and `progress` events until the end."},
                       **error_docs(401, 404, 422, 429, 503)})
def get_job_events(
    job_id: JobId,
    settings: SettingsDep,
    store: StoreDep,
    tenant: Annotated[str, Depends(stream_tenant)],
    last_event_id: Annotated[str | None, Header(
        description="Resume after this event id (browsers send it when they reconnect).")] = None,
) -> EventSourceResponse:
    """Every status and progress event of the job from the start (or after Last-Event-ID);
    the stream ends after the terminal status. Heartbeat comments keep idle proxies open."""
    owned_job(store, tenant, job_id)
    if last_event_id is not None and not _STREAM_ID.match(last_event_id):
        raise ApiError(422, ErrorCode.INVALID_LAST_EVENT_ID, "Last-Event-ID is not one this API sent",
                       field="Last-Event-ID")
    return _open(settings, store, tenant, job_id, last_event_id or "0-0")


def _open(settings: Settings, store: JobStore, tenant: str, job_id: str, cursor: str
          ) -> EventSourceResponse:
    key = slots_key(store.prefix, tenant)
    slot = take_slot(store.r, key, settings.max_streams_per_tenant)
    if slot is None:
        raise ApiError(429, ErrorCode.TOO_MANY_STREAMS,
                       f"at most {settings.max_streams_per_tenant} open event streams per caller",
                       headers={"Retry-After": str(settings.retry_after_seconds)})
    # One connection per stream: a blocking read holds it. Its timeout outlasts the block.
    r = connections.stream_client(socket_timeout=READ_BLOCK_MS / 1000 + 5)
    return EventSourceResponse(_events(r, store, job_id, cursor, (key, slot)),
                               ping=max(1, round(settings.sse_heartbeat_seconds)))
