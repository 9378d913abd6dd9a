"""The webhook outbox in Redis: `webhooks:due`, a sorted set of events by due time.

The job store's transition scripts add an entry (`job|event|type|stream id`) in the same script
as the transition, so an event exists as soon as its transition does. The dispatcher leases due
entries (moves them into the future) and sends one Celery task per entry; a delivery that ends
removes its entry or reschedules it, and one whose process died comes due again when its lease
runs out: at least once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service.jobstore import JobStore

_LEASE = """
-- KEYS[1]: the due set. ARGV: lease seconds, batch. Progress entries are sent once, never again.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  if string.find(member, '|progress|', 1, true) then redis.call('ZREM', KEYS[1], member)
  else redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), member) end
end
return due
"""

_RECORD = """
-- KEYS[1]: the job. ARGV: field, state json. A deleted job is not brought back by a late write.
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""


@dataclass(frozen=True)
class Event:
    """One webhook event of one job, as its outbox entry names it."""

    job_id: str
    hook: str  # start | progress | completed
    type: str  # job.started | job.progress | job.succeeded | job.failed | job.canceled
    stream_id: str  # the job's event-stream entry: when it happened, and a unique id

    @classmethod
    def parse(cls, member: str) -> Event:
        """The event an outbox entry names."""
        job_id, hook, type_, stream_id = member.split("|")
        return cls(job_id, hook, type_, stream_id)

    @property
    def member(self) -> str:
        """The outbox entry."""
        return "|".join((self.job_id, self.hook, self.type, self.stream_id))

    @property
    def webhook_id(self) -> str:
        """The `webhook-id`: the same on every try of this event."""
        return f"msg_{self.job_id}_{self.stream_id.replace('-', '_')}"

    @property
    def at(self) -> float:
        """When the event happened (epoch seconds, from the stream id)."""
        return int(self.stream_id.split("-")[0]) / 1000


class Outbox:
    """Due webhook events and the delivery state written back to their jobs."""

    def __init__(self, store: JobStore) -> None:
        self.store, self.r = store, store.r
        self.key = f"{store.prefix}webhooks:due"
        self._lease = self.r.register_script(_LEASE)
        self._record = self.r.register_script(_RECORD)

    def lease_due(self, lease_seconds: float, batch: int = 100) -> list[Event]:
        """Due events, each leased to this caller for `lease_seconds`."""
        return [Event.parse(m) for m in self._lease(keys=[self.key], args=[lease_seconds, batch])]

    def done(self, event: Event) -> None:
        """The event needs no more tries."""
        self.r.zrem(self.key, event.member)

    def retry_at(self, event: Event, when: float) -> None:
        """Try the event again at `when` (epoch seconds)."""
        self.r.zadd(self.key, {event.member: when})

    def record(self, event: Event, state: dict[str, Any]) -> None:
        """Write the event's delivery state into its job record (if the job still exists)."""
        self._record(keys=[self.store._job_key(event.job_id)],
                     args=[f"webhook:{event.hook}", json.dumps(state)])
