"""The job store: one Redis hash per job (the single source of truth) plus the indexes around it.

Keys (all under a prefix, default `nst:`):
  job:{id}               hash, expires after NST_JOB_TTL_SECONDS
  tenant:{t}:jobs        sorted set, score = a global sequence number (newest first listing)
  tenant:{t}:active      set of the tenant's unfinished jobs (per-tenant cap)
  queued / running       sorted sets: queued by enqueue time, running by lease expiry
  unsent                 sorted set: created jobs whose queue message is not known to be sent
  idem:{t}:{sha256(key)} "body_hash job_id" for Idempotency-Key
  count:{status}         total jobs that ended in each terminal status (never expires)
  failures               hash, error code -> total jobs that failed with it (never expires)
  job:{id}:events        stream of the job's status and progress events (GET .../events)
  webhooks:due           sorted set, score = due time: the webhook outbox (webhooks/)

Every status transition is one Lua script, so two workers, the reaper and the API never
interleave halfway through one. Timestamps come from Redis' clock so leases agree across hosts.
Not for Redis Cluster: scripts derive keys from the prefix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from service.contract import TERMINAL, JobProgress, JobStatus, lua_is_terminal
from service.error_codes import ErrorCode, lua_job_error_codes

log = logging.getLogger("nst.store")

DEFAULT_PREFIX = "nst:"
PROGRESS_WEBHOOK_INTERVAL = 5.0  # seconds: the least gap between two progress webhooks of a job

# Shared head of every script: the clock, and the one way a job reaches a terminal status.
_PRELUDE = lua_job_error_codes() + """
local prefix = ARGV[1]
local job = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
-- Every status and progress change goes to the job's event stream, and to the webhook outbox
-- when the job asked for that event, in the script of the transition itself: none is lost.
local function emit(kind, hook, hook_type)
  local h = redis.call('HMGET', job, 'id', 'status', 'progress', 'error_code', 'error_message',
                       'webhook', 'webhook_events')
  local stream = job .. ':events'
  local sid = redis.call('XADD', stream, 'MAXLEN', '~', 1000, '*', 'kind', kind, 'status', h[2],
                         'progress', h[3] or '', 'error_code', h[4] or '', 'error_message', h[5] or '')
  local ttl = redis.call('TTL', job)
  if ttl > 0 then redis.call('EXPIRE', stream, ttl) end
  if hook ~= '' and h[6] and string.find(',' .. (h[7] or '') .. ',', ',' .. hook .. ',', 1, true) then
    redis.call('ZADD', prefix .. 'webhooks:due', now, h[1] .. '|' .. hook .. '|' .. hook_type .. '|' .. sid)
    if hook ~= 'progress' then
      redis.call('HSET', job, 'webhook:' .. hook, cjson.encode({state = 'pending', attempts = 0}))
    end
  end
end
local function finish(status, code, message)
  local id = redis.call('HGET', job, 'id')
  local tenant = redis.call('HGET', job, 'tenant')
  -- cancel_requested stays true on a job that ended canceled: the request was honored
  redis.call('HSET', job, 'status', status, 'finished_at', now,
             'cancel_requested', status == 'canceled' and '1' or '0')
  if code ~= '' then redis.call('HSET', job, 'error_code', code, 'error_message', message) end
  redis.call('HDEL', job, 'lease_until')
  redis.call('ZREM', prefix .. 'queued', id)
  redis.call('ZREM', prefix .. 'running', id)
  redis.call('SREM', prefix .. 'tenant:' .. tenant .. ':active', id)
  -- the totals are counted here, once per job: no path reaches a terminal status twice
  redis.call('INCR', prefix .. 'count:' .. status)
  if status == 'failed' then redis.call('HINCRBY', prefix .. 'failures', code, 1) end
  emit('status', 'completed', 'job.' .. status)
end
local function requeue(id)  -- the attempt is over, not the job: another delivery runs it
  redis.call('HSET', job, 'status', 'queued', 'attempt_token', '')
  redis.call('HDEL', job, 'lease_until', 'preview_key')
  redis.call('ZREM', prefix .. 'running', id)
  redis.call('ZADD', prefix .. 'queued', now, id)
  emit('status', '', '')
end
""" + lua_is_terminal()

_CREATE = _PRELUDE + """
-- ARGV: prefix, id, tenant, params, inputs, ttl, max_active, max_queue, idem_key, idem_value,
--       webhook url, webhook events (both '' for none)
local id, tenant = ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[6])
if ARGV[9] ~= '' then
  local seen = redis.call('GET', ARGV[9])
  if seen then
    local earlier = string.sub(seen, string.find(seen, ' ') + 1)
    return {'existing', seen, redis.call('HGETALL', prefix .. 'job:' .. earlier)}
  end
end
local active = prefix .. 'tenant:' .. tenant .. ':active'
for _, other in ipairs(redis.call('SMEMBERS', active)) do  -- forget expired records
  if redis.call('EXISTS', prefix .. 'job:' .. other) == 0 then redis.call('SREM', active, other) end
end
if redis.call('SCARD', active) >= tonumber(ARGV[7]) then return {'tenant_limit'} end
if redis.call('ZCARD', prefix .. 'queued') >= tonumber(ARGV[8]) then return {'queue_full'} end
local seq = redis.call('INCR', prefix .. 'seq')
redis.call('HSET', job, 'id', id, 'tenant', tenant, 'status', 'queued', 'params', ARGV[4],
  'inputs', ARGV[5], 'created_at', now, 'attempts', 0, 'seq', seq)
redis.call('HSET', job, 'expires_at', now + ttl)
if ARGV[11] ~= '' then redis.call('HSET', job, 'webhook', ARGV[11], 'webhook_events', ARGV[12]) end
redis.call('EXPIRE', job, ttl)
emit('status', '', '')
local index = prefix .. 'tenant:' .. tenant .. ':jobs'
redis.call('ZADD', index, seq, id)
redis.call('EXPIRE', index, ttl)
redis.call('SADD', active, id)
redis.call('ZADD', prefix .. 'queued', now, id)
redis.call('ZADD', prefix .. 'unsent', now, id)  -- until the API (or a reaper) publishes it
if ARGV[9] ~= '' then redis.call('SET', ARGV[9], ARGV[10], 'EX', ttl) end
return {'created', '', redis.call('HGETALL', job)}
"""

_CLAIM = _PRELUDE + """
-- ARGV: prefix, token, lease_seconds, max_attempts
if redis.call('EXISTS', job) == 0 then return {'missing'} end
local status = redis.call('HGET', job, 'status')
if is_terminal(status) then return {'done'} end
local lease = tonumber(redis.call('HGET', job, 'lease_until') or '0')
if status == 'running' and lease > now then return {'busy'} end  -- someone else holds it
if redis.call('HGET', job, 'cancel_requested') == '1' then
  finish('canceled', '', '')
  return {'canceled'}
end
-- Counted only when an attempt starts: a job ended here reports the attempts it really ran.
local ran = tonumber(redis.call('HGET', job, 'attempts') or '0')
if ran >= tonumber(ARGV[4]) then
  finish('failed', CODE_ATTEMPTS_EXHAUSTED, 'the job was delivered ' .. ran ..
    ' times without finishing')
  return {'exhausted'}
end
redis.call('HINCRBY', job, 'attempts', 1)
local id = redis.call('HGET', job, 'id')
local until_ = now + tonumber(ARGV[3])
redis.call('HSET', job, 'status', 'running', 'attempt_token', ARGV[2], 'lease_until', until_,
  'attempt_started_at', now)
redis.call('HDEL', job, 'preview_key')  -- an earlier attempt's previews are its own, never served
local wait = ''
if not redis.call('HGET', job, 'started_at') then
  redis.call('HSET', job, 'started_at', now)
  wait = tostring(now - tonumber(redis.call('HGET', job, 'created_at')))
  emit('status', 'start', 'job.started')
else
  emit('status', '', '')
end
redis.call('ZREM', prefix .. 'queued', id)
redis.call('ZADD', prefix .. 'running', until_, id)
return {'claimed', wait}
"""

_TOUCH = _PRELUDE + """
-- ARGV: prefix, token, lease_seconds, progress_json, preview_key (both '' for none),
--       seconds between progress webhooks
if redis.call('HGET', job, 'status') ~= 'running'
   or redis.call('HGET', job, 'attempt_token') ~= ARGV[2] then return 'lost' end
local until_ = now + tonumber(ARGV[3])
redis.call('HSET', job, 'lease_until', until_)
redis.call('ZADD', prefix .. 'running', until_, redis.call('HGET', job, 'id'))
if ARGV[4] ~= '' then
  redis.call('HSET', job, 'progress', ARGV[4])
  -- progress webhooks at most every ARGV[6] seconds; the stream gets every write
  local last = tonumber(redis.call('HGET', job, 'webhook_progress_at') or '0')
  if now - last >= tonumber(ARGV[6]) then
    redis.call('HSET', job, 'webhook_progress_at', now)
    emit('progress', 'progress', 'job.progress')
  else
    emit('progress', '', '')
  end
end
if ARGV[5] ~= '' then redis.call('HSET', job, 'preview_key', ARGV[5]) end
if redis.call('HGET', job, 'cancel_requested') == '1' then return 'cancel' end
return 'ok'
"""

_FINISH = _PRELUDE + """
-- ARGV: prefix, token, status, error_code, error_message, result_key, result_etag, progress_json
if redis.call('HGET', job, 'status') ~= 'running'
   or redis.call('HGET', job, 'attempt_token') ~= ARGV[2] then return {'lost'} end
if ARGV[6] ~= '' then redis.call('HSET', job, 'result_key', ARGV[6], 'result_etag', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', job, 'progress', ARGV[8]) end
finish(ARGV[3], ARGV[4], ARGV[5])
return {'ok', tostring(now - tonumber(redis.call('HGET', job, 'attempt_started_at')))}
"""

_CANCEL = _PRELUDE + """
-- ARGV: prefix
if redis.call('EXISTS', job) == 0 then return {'missing', {}} end
local status = redis.call('HGET', job, 'status')
if status == 'queued' then
  finish('canceled', '', '')
  status = 'canceled'
elseif status == 'running' then
  redis.call('HSET', job, 'cancel_requested', '1')
end
return {status, redis.call('HGETALL', job)}
"""

_REAP = _PRELUDE + """
-- ARGV: prefix, max_attempts, soft_time_limit, id
if redis.call('EXISTS', job) == 0 then
  redis.call('ZREM', prefix .. 'running', ARGV[4])
  return 'missing'
end
if redis.call('HGET', job, 'status') ~= 'running' then
  redis.call('ZREM', prefix .. 'running', ARGV[4])
  return 'not_running'
end
if tonumber(redis.call('HGET', job, 'lease_until') or '0') > now then return 'alive' end
local began = tonumber(redis.call('HGET', job, 'attempt_started_at') or now)
if redis.call('HGET', job, 'cancel_requested') == '1' then
  finish('canceled', '', '')
  return 'canceled'
elseif now - began >= tonumber(ARGV[3]) then
  finish('failed', CODE_TIMEOUT, 'the job ran past its time limit and its worker stopped')
  return 'timeout'
elseif tonumber(redis.call('HGET', job, 'attempts')) >= tonumber(ARGV[2]) then
  finish('failed', CODE_ATTEMPTS_EXHAUSTED, 'the worker running the job was lost on every attempt')
  return 'exhausted'
end
requeue(ARGV[4])
return 'requeued'
"""

_RELEASE = _PRELUDE + """
-- ARGV: prefix, token, max_attempts, error_code, error_message
if redis.call('HGET', job, 'status') ~= 'running'
   or redis.call('HGET', job, 'attempt_token') ~= ARGV[2] then return 'lost' end
if tonumber(redis.call('HGET', job, 'attempts')) >= tonumber(ARGV[3]) then
  finish('failed', ARGV[4], ARGV[5])
  return 'failed'
end
local id = redis.call('HGET', job, 'id')
requeue(id)
redis.call('ZADD', prefix .. 'unsent', 0, id)  -- the next reaper pass publishes it
return 'requeued'
"""

_DELETE = _PRELUDE + """
-- ARGV: prefix, id. The record and its indexes; an attempt still running finds itself `lost`.
if redis.call('EXISTS', job) == 0 then return 0 end
local tenant = redis.call('HGET', job, 'tenant')
redis.call('DEL', job, job .. ':events')
redis.call('ZREM', prefix .. 'queued', ARGV[2])
redis.call('ZREM', prefix .. 'running', ARGV[2])
redis.call('ZREM', prefix .. 'tenant:' .. tenant .. ':jobs', ARGV[2])
redis.call('SREM', prefix .. 'tenant:' .. tenant .. ':active', ARGV[2])
return 1
"""

_LIST = """
-- KEYS[1]: the tenant's index. ARGV: prefix, after (a job id of this index, '' for the top),
-- limit, status ('' for any). Returns {next cursor: the last job's id ('' for none), {hash, ...}}
-- or {'invalid'}; expired records leave the index.
local index, prefix, top = KEYS[1], ARGV[1], '+inf'
local limit, status, out = tonumber(ARGV[3]), ARGV[4], {}
if ARGV[2] ~= '' then
  local seq = redis.call('ZSCORE', index, ARGV[2])
  if not seq then return {'invalid', {}} end
  top = '(' .. seq
end
while true do
  local rows = redis.call('ZREVRANGEBYSCORE', index, top, '-inf', 'WITHSCORES', 'LIMIT', 0, 100)
  if #rows == 0 then return {'', out} end
  for i = 1, #rows, 2 do
    local key = prefix .. 'job:' .. rows[i]
    top = '(' .. rows[i + 1]
    if redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', index, rows[i])
    elseif status == '' or redis.call('HGET', key, 'status') == status then
      out[#out + 1] = redis.call('HGETALL', key)
      if #out == limit then
        local more = redis.call('ZREVRANGEBYSCORE', index, top, '-inf', 'LIMIT', 0, 1)
        return {#more > 0 and rows[i] or '', out}
      end
    end
  end
end
"""

_SEND_UNSENT = """
-- KEYS[1]: the unsent set. ARGV: prefix, id, age. 1 if the caller must publish the job now.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local since = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not since or tonumber(since) >= now - tonumber(ARGV[3]) then return 0 end
if redis.call('HGET', ARGV[1] .. 'job:' .. ARGV[2], 'status') ~= 'queued' then
  redis.call('ZREM', KEYS[1], ARGV[2])  -- claimed, finished or expired: nothing to send
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[2])  -- one caller per period; removed once sent
return 1
"""

_RESEND = """
-- KEYS[1]: the queued set. ARGV: id, age. Only the first caller for a stale entry gets 1.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local since = redis.call('ZSCORE', KEYS[1], ARGV[1])
if since and tonumber(since) < now - tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  return 1
end
return 0
"""


class StoreError(Exception):
    """A request the store refuses; `code` is the API's error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class IdempotencyConflict(StoreError):
    """The Idempotency-Key was used before with a different request body."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.IDEMPOTENCY_CONFLICT, "this Idempotency-Key was used with another body")


class TenantLimit(StoreError):
    """The tenant already has as many unfinished jobs as allowed."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.TOO_MANY_ACTIVE_JOBS, "too many unfinished jobs; retry later")


class QueueFull(StoreError):
    """The global queue is at its depth limit."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.QUEUE_FULL, "the service is at capacity; retry later")


class InvalidCursor(StoreError):
    """The list cursor names no job of this tenant (or one that expired)."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.INVALID_CURSOR, "cursor is not one this API returned (or it expired)")


@dataclass
class Job:
    """One job record as read from its hash."""

    id: str
    tenant: str
    status: JobStatus
    params: dict[str, Any]
    inputs: dict[str, Any]
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    progress: JobProgress | None = None
    error_code: str | None = None
    error_message: str | None = None
    result_key: str | None = None
    result_etag: str | None = None
    preview_key: str | None = None
    cancel_requested: bool = False
    expires_at: float | None = None
    webhook: str | None = None
    webhook_events: tuple[str, ...] = ()
    webhook_deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Job:
        """Build from HGETALL output (decoded strings)."""

        def num(name: str) -> float | None:
            return float(h[name]) if h.get(name) else None

        return cls(
            id=h["id"],
            tenant=h["tenant"],
            status=JobStatus(h["status"]),
            params=json.loads(h.get("params") or "{}"),
            inputs=json.loads(h.get("inputs") or "{}"),
            created_at=float(h["created_at"]),
            started_at=num("started_at"),
            finished_at=num("finished_at"),
            attempts=int(h.get("attempts") or 0),
            progress=JobProgress.model_validate_json(h["progress"]) if h.get("progress") else None,
            error_code=h.get("error_code") or None,
            error_message=h.get("error_message") or None,
            result_key=h.get("result_key") or None,
            result_etag=h.get("result_etag") or None,
            preview_key=h.get("preview_key") or None,
            cancel_requested=h.get("cancel_requested") == "1",
            expires_at=num("expires_at"),
            webhook=h.get("webhook") or None,
            webhook_events=tuple(filter(None, h.get("webhook_events", "").split(","))),
            webhook_deliveries={k.removeprefix("webhook:"): json.loads(v) for k, v in h.items()
                                if k.startswith("webhook:")},
        )

    @property
    def finished(self) -> bool:
        """True once the job reached succeeded, failed or canceled."""
        return self.status.is_terminal


def new_job_id() -> str:
    """An unguessable job id (128 random bits), safe in URLs and file names."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Claim:
    """The outcome of a worker trying to start a job: `claimed` or why not."""

    outcome: str  # claimed | done | busy | canceled | exhausted | missing
    token: str
    queue_wait: float | None = None


class JobStore:
    """Job records and indexes in Redis; every method is one round trip or one script.

    The client must decode replies (`decode_responses=True`). With `wait_replicas`, every status
    transition is followed by WAIT on its connection, so that a change is on that many replicas
    before anyone hears of it; after `wait_timeout_ms` it goes on anyway (logged): a replica down
    must not stop the service. Progress writes never wait.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX,
                 wait_replicas: int = 0, wait_timeout_ms: int = 500) -> None:
        self.r = client
        self.prefix = prefix
        self.wait_replicas, self.wait_timeout_ms = wait_replicas, wait_timeout_ms
        self._create = client.register_script(_CREATE)
        self._claim = client.register_script(_CLAIM)
        self._touch = client.register_script(_TOUCH)
        self._finish = client.register_script(_FINISH)
        self._cancel = client.register_script(_CANCEL)
        self._reap = client.register_script(_REAP)
        self._release = client.register_script(_RELEASE)
        self._resend = client.register_script(_RESEND)
        self._send_unsent = client.register_script(_SEND_UNSENT)
        self._list = client.register_script(_LIST)
        self._delete = client.register_script(_DELETE)

    def _transition(self, script: Script, *, keys: list[str], args: list[Any]) -> Any:
        """Run a transition's script; with wait_replicas, WAIT in the same round trip."""
        if not self.wait_replicas:
            return script(keys=keys, args=args)
        for _ in range(2):
            # One pipeline is one connection: WAIT counts the writes of its own connection only.
            pipe = self.r.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            try:
                out, acked = pipe.execute()
            except NoScriptError:  # a restarted or newly promoted server: load it, once
                self.r.script_load(script.script)
                continue
            if acked < self.wait_replicas:
                log.warning("a job store write was not acknowledged by enough replicas in time",
                            extra={"replicas": acked, "wanted": self.wait_replicas,
                                   "timeout_ms": self.wait_timeout_ms})
            return out
        raise NoScriptError("the job store's script could not be loaded")

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _idem_key(self, tenant: str, key: str) -> str:
        return f"{self.prefix}idem:{tenant}:{hashlib.sha256(key.encode()).hexdigest()}"

    # --- API side -------------------------------------------------------------------------

    def find_idempotent(self, tenant: str, key: str, body_hash: str) -> str | None:
        """The job an earlier request with this key created, or None; raises on a body mismatch."""
        seen = self.r.get(self._idem_key(tenant, key))
        return _check_replay(seen, body_hash) if seen else None

    def create(
        self,
        job_id: str,
        tenant: str,
        params: dict[str, Any],
        inputs: dict[str, Any],
        *,
        ttl: int,
        max_active: int,
        max_queue: int,
        idempotency: tuple[str, str] | None = None,
        webhook: tuple[str, str] | None = None,
    ) -> Job | None:
        """Record a queued job and return it; for a replayed request, the earlier job (None if
        it expired). `idempotency` is (key, body_hash); `webhook` is (url, comma-separated events).

        Raises TenantLimit, QueueFull, IdempotencyConflict.
        """
        idem_key = self._idem_key(tenant, idempotency[0]) if idempotency else ""
        idem_value = f"{idempotency[1]} {job_id}" if idempotency else ""
        out = self._transition(
            self._create,
            keys=[self._job_key(job_id)],
            args=[self.prefix, job_id, tenant, json.dumps(params), json.dumps(inputs), ttl,
                  max_active, max_queue, idem_key, idem_value, *(webhook or ("", ""))],
        )
        outcome, seen, record = (*out, "", [])[:3]
        if outcome == "tenant_limit":
            raise TenantLimit()
        if outcome == "queue_full":
            raise QueueFull()
        if outcome == "existing":
            _check_replay(seen, idempotency[1] if idempotency else "")
        return _pairs_job(record)

    def mark_sent(self, job_id: str) -> None:
        """The job's queue message was published: the reaper need not send it."""
        self.r.zrem(f"{self.prefix}unsent", job_id)

    def unsent(self, age: float) -> list[str]:
        """Queued jobs created `age` seconds ago whose message was never confirmed sent (the API
        died or the publish failed); each is handed to one caller per `age`, to publish."""
        now_s, now_us = self.r.time()
        key = f"{self.prefix}unsent"
        ids = self.r.zrangebyscore(key, "-inf", now_s + now_us / 1e6 - age)
        return [i for i in ids if self._send_unsent(keys=[key], args=[self.prefix, i, age])]

    def get(self, job_id: str) -> Job | None:
        """The job record, or None when unknown or expired."""
        return _job(self.r.hgetall(self._job_key(job_id)))

    def list(
        self, tenant: str, *, limit: int, before: str | None = None, status: str | None = None
    ) -> tuple[list[Job], str | None]:
        """A page of the tenant's jobs, newest first, and the cursor of the next page (or None).

        The cursor is the id of the last job returned: it says nothing the tenant does not know
        (no global count). Raises InvalidCursor for an id not in the tenant's index.
        """
        cursor, rows = self._list(keys=[f"{self.prefix}tenant:{tenant}:jobs"],
                                  args=[self.prefix, before or "", limit, status or ""])
        if cursor == "invalid":
            raise InvalidCursor()
        return [_pairs_job(row) for row in rows], cursor or None

    def cancel(self, job_id: str) -> tuple[str, Job | None]:
        """Cancel: a queued job ends `canceled` now, a running one is flagged.

        Returns the status the cancel found or made (`missing` if none) and the record after it.
        """
        status, record = self._transition(self._cancel, keys=[self._job_key(job_id)],
                                          args=[self.prefix])
        return status, _pairs_job(record) if record else None

    def delete(self, job_id: str) -> bool:
        """Remove the record, its event stream and its index entries; False if it was gone."""
        return bool(self._transition(self._delete, keys=[self._job_key(job_id)],
                                     args=[self.prefix, job_id]))

    def events_key(self, job_id: str) -> str:
        """The job's Redis Stream of status and progress events."""
        return f"{self._job_key(job_id)}:events"

    def queue_depth(self) -> int:
        """Jobs waiting for a worker, all tenants."""
        return int(self.r.zcard(f"{self.prefix}queued"))

    def queue_positions(self, job_ids: list[str]) -> dict[str, int]:
        """Place in the queue (1 = next to run) of each of `job_ids` that is queued; one round trip.

        The queued set is ordered by when each job was last sent to the workers, as the broker's
        FIFO list is; a job re-sent as lost (stale_queued) counts from the re-send.
        """
        if not job_ids:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.zrank(f"{self.prefix}queued", job_id)
        ranks = pipe.execute()
        return {i: rank + 1 for i, rank in zip(job_ids, ranks, strict=True) if rank is not None}

    def status_counts(self) -> dict[str, int]:
        """Jobs queued and running now, and totals that ended in each terminal status."""
        pipe = self.r.pipeline()
        pipe.zcard(f"{self.prefix}queued")
        pipe.zcard(f"{self.prefix}running")
        for status in sorted(TERMINAL):
            pipe.get(f"{self.prefix}count:{status}")
        queued, running, *ends = pipe.execute()
        counts = {"queued": int(queued), "running": int(running)}
        counts.update({s: int(v or 0) for s, v in zip(sorted(TERMINAL), ends, strict=True)})
        return counts

    def failure_counts(self) -> dict[str, int]:
        """Total jobs that ended failed, by error code (codes seen so far)."""
        return {code: int(n) for code, n in self.r.hgetall(f"{self.prefix}failures").items()}

    # --- worker side ----------------------------------------------------------------------

    def claim(self, job_id: str, *, lease_seconds: float, max_attempts: int) -> Claim:
        """Start an attempt: a new token, attempts + 1, status running, a fresh lease."""
        token = secrets.token_hex(8)
        out = self._transition(
            self._claim,
            keys=[self._job_key(job_id)], args=[self.prefix, token, lease_seconds, max_attempts]
        )
        wait = out[1] if len(out) > 1 and out[1] else None
        return Claim(out[0], token, float(wait) if wait else None)

    def touch(
        self,
        job_id: str,
        token: str,
        *,
        lease_seconds: float,
        progress: JobProgress | None = None,
        preview_key: str | None = None,
    ) -> str:
        """Renew the lease (and write progress): `ok`, `cancel` requested, or `lost` ownership."""
        return self._touch(
            keys=[self._job_key(job_id)],
            args=[self.prefix, token, lease_seconds,
                  progress.model_dump_json() if progress else "", preview_key or "",
                  PROGRESS_WEBHOOK_INTERVAL],
        )

    def verdict(self, job_id: str, token: str) -> str:
        """The cheap per-iteration check: `ok`, `cancel` or `lost`, without writing."""
        status, owner, cancel = self.r.hmget(
            self._job_key(job_id), ["status", "attempt_token", "cancel_requested"]
        )
        if status != JobStatus.RUNNING or owner != token:
            return "lost"
        return "cancel" if cancel == "1" else "ok"

    def finish(
        self,
        job_id: str,
        token: str,
        status: JobStatus,
        *,
        error: tuple[str, str] | None = None,
        result: tuple[str, str] | None = None,
        progress: JobProgress | None = None,
    ) -> float | None:
        """End this attempt in a terminal status; the run seconds, or None if no longer owner.

        `error` is (code, message); `result` is (store key, etag).
        """
        code, message = error or ("", "")
        key, etag = result or ("", "")
        out = self._transition(
            self._finish,
            keys=[self._job_key(job_id)],
            args=[self.prefix, token, status, code, message, key, etag,
                  progress.model_dump_json() if progress else ""],
        )
        return float(out[1]) if out[0] == "ok" else None

    def release(self, job_id: str, token: str, *, max_attempts: int,
                error: tuple[str, str]) -> str:
        """Hand the job back after a retryable failure: `requeued` (the reaper sends it again),
        `failed` with `error` when this was the last attempt, or `lost`."""
        return self._transition(self._release, keys=[self._job_key(job_id)],
                                args=[self.prefix, token, max_attempts, *error])

    def stale_running(self) -> list[str]:
        """Running jobs whose lease has expired by the Redis clock."""
        now_s, now_us = self.r.time()
        cutoff = now_s + now_us / 1e6
        return self.r.zrangebyscore(f"{self.prefix}running", "-inf", cutoff)

    def reap(self, job_id: str, *, max_attempts: int, soft_time_limit: float) -> str:
        """Reclaim one job with an expired lease: requeued, or ended canceled/timeout/exhausted."""
        return self._transition(
            self._reap,
            keys=[self._job_key(job_id)], args=[self.prefix, max_attempts, soft_time_limit, job_id],
        )

    def stale_queued(self, age: float) -> list[str]:
        """Queued jobs nobody claimed for `age` seconds; each is handed to one caller only.

        Their message may be lost (published into a Redis that died before writing it, or the
        API failed between recording and publishing); sending another is harmless.
        """
        now_s, now_us = self.r.time()
        cutoff = now_s + now_us / 1e6 - age
        ids = self.r.zrangebyscore(f"{self.prefix}queued", "-inf", cutoff)
        return [i for i in ids if self._resend(keys=[f"{self.prefix}queued"], args=[i, age])]


def _check_replay(seen: str, body_hash: str) -> str:
    stored_hash, _, job_id = seen.partition(" ")
    if stored_hash != body_hash:
        raise IdempotencyConflict()
    return job_id


def _job(record: dict[str, str]) -> Job | None:
    return Job.from_hash(record) if record else None


def _pairs_job(pairs: list[str]) -> Job | None:
    """A job from a script's HGETALL reply (a flat key, value, ... list)."""
    return _job(dict(zip(pairs[::2], pairs[1::2], strict=True)))
