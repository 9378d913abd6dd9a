"""The real Redis on 127.0.0.1:6379 under a key prefix of its own, for in-process tests."""

from __future__ import annotations

import uuid

import redis

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def unique_prefix() -> str:
    """A prefix no other test session uses."""
    return f"nst-test-{uuid.uuid4().hex[:12]}:"


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    """Remove every key under `prefix` (the test session's own)."""
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)
