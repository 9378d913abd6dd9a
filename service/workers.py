"""Worker heartbeats in Redis: each worker writes a short-lived key, /metrics counts the live ones.

Keys (under the job store's prefix):
  worker:{node}   "busy slots", expires unless the worker writes it again
  workers         set of the nodes that wrote one (pruned at read once their key expired)

Cheap at scrape (one SMEMBERS and one MGET), unlike asking every worker over the broker.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class Fleet:
    """The workers whose heartbeat is live: how many, their pool slots, and the slots running a job."""

    online: int
    slots: int
    busy: int


def beat(client: redis.Redis, prefix: str, node: str, *, busy: int, slots: int,
         ttl: float) -> None:
    """Say this worker is alive with `busy` of its `slots` pool processes running a job."""
    pipe = client.pipeline(transaction=True)
    pipe.set(f"{prefix}worker:{node}", f"{busy} {slots}", px=int(ttl * 1000))
    pipe.sadd(f"{prefix}workers", node)
    pipe.execute()


def leave(client: redis.Redis, prefix: str, node: str) -> None:
    """A worker stopping: it is offline at once rather than when its key expires."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(f"{prefix}worker:{node}")
    pipe.srem(f"{prefix}workers", node)
    pipe.execute()


def fleet(client: redis.Redis, prefix: str) -> Fleet:
    """The live workers now; nodes whose heartbeat expired leave the set."""
    nodes = sorted(client.smembers(f"{prefix}workers"))
    beats = client.mget([f"{prefix}worker:{n}" for n in nodes]) if nodes else []
    gone = [n for n, b in zip(nodes, beats, strict=True) if b is None]
    if gone:  # a worker beating again meanwhile adds itself back at its next beat
        client.srem(f"{prefix}workers", *gone)
    live = [tuple(map(int, b.split())) for b in beats if b is not None]
    return Fleet(online=len(live), slots=sum(s for _, s in live), busy=sum(b for b, _ in live))
