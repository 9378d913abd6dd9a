"""Open event streams per tenant, counted in Redis so every API process (and host) agrees.

Each stream holds a slot: a member of `streams:{tenant}` scored by when it lapses. A stream
renews its slot while it runs and removes it when it ends; a slot of an API process that died
lapses by itself.
"""

from __future__ import annotations

import secrets

import redis
import redis.asyncio

SLOT_SECONDS = 30.0  # a slot lapses this long after its last renewal

_TAKE = """
-- KEYS[1]: the tenant's slots. ARGV: slot, cap, seconds. 1 if taken, 0 at the cap.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
return 1
"""

_RENEW = """
-- KEYS[1]: the tenant's slots. ARGV: slot, seconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
"""


def slots_key(prefix: str, tenant: str) -> str:
    """The sorted set of a tenant's open streams."""
    return f"{prefix}streams:{tenant}"


def take_slot(r: redis.Redis, key: str, cap: int) -> str | None:
    """A new slot id, or None when the tenant already has `cap` open streams."""
    slot = secrets.token_hex(8)
    return slot if r.eval(_TAKE, 1, key, slot, cap, SLOT_SECONDS) else None


async def renew_slot(r: redis.asyncio.Redis, key: str, slot: str) -> None:
    """Keep the slot for another SLOT_SECONDS."""
    await r.eval(_RENEW, 1, key, slot, SLOT_SECONDS)


async def release_slot(r: redis.asyncio.Redis, key: str, slot: str) -> None:
    """Free the slot."""
    await r.zrem(key, slot)
