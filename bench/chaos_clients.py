"""The chaos soak's clients: one thread per tenant submits tiny jobs (retrying with an
Idempotency-Key through outages), cancels and deletes some, and follows the rest to their end.

What each saw goes into a shared Tally, which the checks compare with the store afterwards.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
from PIL import Image

from service.contract import JobStatus

SUBMIT_GIVE_UP = 30.0  # seconds of refusals and errors after which a submission is abandoned
POLL = 0.5  # seconds between two looks at a client's unfinished jobs
OUTSTANDING = 2  # unfinished jobs per client at a time


def tiny_params(rng: random.Random) -> dict:
    """A job of a few seconds at most: one small scale, some previews to leave files behind."""
    return {"size": 48, "scales": [48], "iterations": [rng.randint(4, 40)], "optimizer": "adam",
            "preview_every": 5, "seed": rng.randint(0, 2**31)}


def png(rng: random.Random, size: tuple[int, int]) -> bytes:
    """A small noise image, different per call."""
    buf = io.BytesIO()
    Image.effect_noise(size, rng.randint(10, 90)).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


@dataclass
class Tally:
    """What all clients saw; every mutation holds the lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    submitted: int = 0  # submissions started (each may take several POSTs)
    abandoned: int = 0  # submissions that never got a 202 (or a replay) before giving up
    failed_posts: int = 0  # POSTs answered 5xx or not at all: each may leave its uploads behind
    refusals: Counter = field(default_factory=Counter)  # status code -> POSTs refused
    accepted: dict[str, str] = field(default_factory=dict)  # job id -> tenant
    canceled: set[str] = field(default_factory=set)  # cancel answered 200/202
    deleted: dict[str, str] = field(default_factory=dict)  # job id -> status last seen before
    last_seen: dict[str, str] = field(default_factory=dict)  # job id -> status last seen
    errors: Counter = field(default_factory=Counter)  # unexpected answers, by kind

    def add(self, name: str, n: int = 1) -> None:
        """Add to a counter field."""
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def error(self, kind: str) -> None:
        """Count an unexpected answer."""
        with self.lock:
            self.errors[kind] += 1


@dataclass
class Plan:
    """What a client will do with one accepted job, and when."""

    job_id: str
    action: str  # watch | cancel | delete | delete_after_end
    at: float  # monotonic time of the action (cancel, delete)
    done: bool = False


class Client(threading.Thread):
    """One tenant: keeps OUTSTANDING jobs in flight until `stop_submitting`, then drains."""

    def __init__(self, url: str, key: str, tenant: str, seed: int, tally: Tally,
                 stop_submitting: threading.Event, stop: threading.Event) -> None:
        super().__init__(name=f"client-{tenant}", daemon=True)
        self.tenant, self.tally, self.rng = tenant, tally, random.Random(seed)
        self.stop_submitting, self.stop_event = stop_submitting, stop
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=15)
        self.plans: list[Plan] = []

    @property
    def idle(self) -> bool:
        """Nothing left to follow (after submissions stopped)."""
        return self.stop_submitting.is_set() and all(p.done for p in self.plans)

    def run(self) -> None:
        while not self.stop_event.is_set():
            pending = [p for p in self.plans if not p.done]
            if not self.stop_submitting.is_set() and len(pending) < OUTSTANDING:
                self.submit()
            for plan in pending:
                self.follow(plan)
            time.sleep(POLL)
        self.http.close()

    def submit(self) -> None:
        """POST a job until accepted, honouring Retry-After; the same Idempotency-Key each time."""
        self.tally.add("submitted")
        key, params = uuid.uuid4().hex, tiny_params(self.rng)
        files = [("content", ("c.png", png(self.rng, (48, 32)))),
                 ("style", ("s.png", png(self.rng, (32, 32))))]
        give_up = time.monotonic() + SUBMIT_GIVE_UP
        while time.monotonic() < give_up and not self.stop_event.is_set():
            try:
                r = self.http.post("/v1/jobs", files=files, data={"params": json.dumps(params)},
                                   headers={"Idempotency-Key": key})
            except httpx.HTTPError:
                self.tally.add("failed_posts")
                time.sleep(0.5)
                continue
            if r.status_code in (200, 202):
                self.accept(r.json()["id"])
                return
            with self.tally.lock:
                self.tally.refusals[r.status_code] += 1
            if r.status_code >= 500:
                self.tally.add("failed_posts")
            elif r.status_code != 429:
                self.tally.error(f"POST {r.status_code}")
                return
            time.sleep(min(float(r.headers.get("retry-after", 1)), 2.0))
        self.tally.add("abandoned")

    def accept(self, job_id: str) -> None:
        """Record the job and decide what to do with it."""
        roll, now = self.rng.random(), time.monotonic()
        action = ("cancel" if roll < 0.15 else "delete" if roll < 0.25
                  else "delete_after_end" if roll < 0.35 else "watch")
        with self.tally.lock:
            self.tally.accepted[job_id] = self.tenant
            self.tally.last_seen[job_id] = "queued"
        self.plans.append(Plan(job_id, action, now + self.rng.uniform(0, 4)))

    def follow(self, plan: Plan) -> None:
        """One look at the job; act on it when due; done once it ended (and was deleted)."""
        try:
            if plan.action == "cancel" and time.monotonic() >= plan.at:
                r = self.http.post(f"/v1/jobs/{plan.job_id}/cancel")
                if r.status_code in (200, 202):
                    with self.tally.lock:
                        self.tally.canceled.add(plan.job_id)
                    plan.action = "watch"
            if plan.action in ("delete", "delete_retry") and time.monotonic() >= plan.at:
                self.delete(plan)
                return
            r = self.http.get(f"/v1/jobs/{plan.job_id}")
        except httpx.HTTPError:
            return  # the API is restarting: look again later
        if r.status_code != 200:
            if r.status_code == 404:
                self.tally.error("GET 404 of an accepted job")
                plan.done = True  # lost: the checks report it
            return
        status = r.json()["status"]
        with self.tally.lock:
            self.tally.last_seen[plan.job_id] = status
        if JobStatus(status).is_terminal:
            if plan.action == "delete_after_end":
                self.delete(plan)
            else:
                plan.done = True

    def delete(self, plan: Plan) -> None:
        """DELETE the job; a 404 after an earlier try whose answer was lost counts too."""
        with self.tally.lock:
            seen = self.tally.last_seen.get(plan.job_id, "queued")
        try:
            r = self.http.delete(f"/v1/jobs/{plan.job_id}")
        except httpx.HTTPError:  # it may have been deleted: a 404 next time means it was
            plan.action, plan.at = "delete_retry", 0.0
            return
        if r.status_code == 204 or (r.status_code == 404 and plan.action == "delete_retry"):
            with self.tally.lock:
                self.tally.deleted[plan.job_id] = seen
            plan.done = True
        elif r.status_code >= 500:
            plan.action, plan.at = "delete_retry", 0.0
        else:
            self.tally.error(f"DELETE {r.status_code}")
            plan.done = True
