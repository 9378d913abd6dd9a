"""The per-process clients (Redis, job store, result store), built lazily from the settings."""

from __future__ import annotations

import secrets
import time
from functools import lru_cache

import redis
import redis.asyncio
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from service.jobstore import DEFAULT_PREFIX, JobStore
from service.results import NotStored, ResultStore, make_store, marker_key
from service.settings import get_settings


@lru_cache
def redis_client() -> redis.Redis:
    """One connection pool per process; short timeouts so a Redis outage fails fast (503).
    With Sentinels, the client asks them for the current master on every (re)connection."""
    settings = get_settings()
    options = {"decode_responses": True, "socket_connect_timeout": 2, "socket_timeout": 5,
               "health_check_interval": 30}
    if settings.sentinels():
        sentinel = Sentinel(settings.sentinels(), socket_connect_timeout=1, socket_timeout=2)
        return sentinel.master_for(settings.redis_master_name, **options)
    return redis.Redis.from_url(settings.broker_url, **options)


def stream_client(socket_timeout: float) -> redis.asyncio.Redis:
    """A new asyncio client for one event stream (its blocking read holds a connection), on the
    master that redis_client() would reach."""
    settings = get_settings()
    options = {"decode_responses": True, "socket_connect_timeout": 2,
               "socket_timeout": socket_timeout}
    if settings.sentinels():
        return _async_sentinel().master_for(settings.redis_master_name, **options)
    return redis.asyncio.Redis.from_url(settings.broker_url, **options)


@lru_cache
def _async_sentinel() -> AsyncSentinel:
    # One per process, like redis_client()'s: each stream's client asks it for the master.
    return AsyncSentinel(get_settings().sentinels(), socket_connect_timeout=1, socket_timeout=2)


@lru_cache
def job_store() -> JobStore:
    """The job store on this process' Redis client; with NST_REDIS_WAIT_REPLICAS, each status
    transition waits for that many replicas to acknowledge it."""
    settings = get_settings()
    return JobStore(redis_client(), wait_replicas=settings.redis_wait_replicas,
                    wait_timeout_ms=settings.redis_wait_timeout_ms)


@lru_cache
def result_store() -> ResultStore:
    """The result store NST_STORAGE selects."""
    return make_store(get_settings())


class StoreMismatch(RuntimeError):
    """This process does not see the result store that the rest of the deployment uses."""


def check_shared_store(timeout: float = 10.0) -> None:
    """Prove this process sees the deployment's result store: the first process writes a marker
    through its store and names it in Redis; every later one must read it back through its own.

    A worker with another NST_DATA_DIR (or bucket) would otherwise fail every job it takes.
    """
    r, store = redis_client(), result_store()
    name = f"{DEFAULT_PREFIX}store_marker"
    if r.set(name, secrets.token_hex(16), nx=True):
        store.put(marker_key(r.get(name)), b"nst result store marker", "text/plain")
        return
    token, deadline = r.get(name), time.monotonic() + timeout
    while True:  # the first process may be writing the marker right now
        try:
            store.get(marker_key(token))
            return
        except NotStored:
            if time.monotonic() >= deadline:
                raise StoreMismatch(
                    f"the result store ({get_settings().storage}: {store!r}) lacks the marker "
                    f"{marker_key(token)} that another API or worker of this Redis wrote: point "
                    "NST_DATA_DIR at the shared directory (or use the same NST_STORAGE=s3 bucket)"
                ) from None
            time.sleep(0.5)
