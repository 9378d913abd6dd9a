"""The per-process clients (Redis, job store, result store), built lazily from the settings."""

from __future__ import annotations

from functools import lru_cache

import redis

from service.jobstore import JobStore
from service.results import ResultStore, make_store
from service.settings import get_settings


@lru_cache
def redis_client() -> redis.Redis:
    """One connection pool per process; short timeouts so a Redis outage fails fast (503)."""
    return redis.Redis.from_url(
        get_settings().broker_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )


@lru_cache
def job_store() -> JobStore:
    """The job store on this process' Redis client."""
    return JobStore(redis_client())


@lru_cache
def result_store() -> ResultStore:
    """The result store NST_STORAGE selects."""
    return make_store(get_settings())
