"""One try of one webhook event: guard the destination, sign, POST, record, reschedule."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from api.routes.jobs import job_view  # the one job view, also the webhook's `data`
from service.settings import Settings
from service.webhooks import WebhookRefused, resolve_destination, signed_headers
from webhooks.outbox import Event, Outbox

log = logging.getLogger("nst.webhooks")

MAX_RESPONSE_BYTES = 4096  # of a receiver's answer we read (and ignore) at most this much
RETRYABLE = frozenset({408, 429})  # and every 5xx


@dataclass(frozen=True)
class Outcome:
    """How one try went: an HTTP status, or an error before any."""

    status: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Worth another try later: 5xx, 408, 429, timeouts and connection errors."""
        if self.status is None:
            return self.error is not None and not self.error.startswith("refused")
        return self.status >= 500 or self.status in RETRYABLE


def body_of(event: Event, view: dict) -> str:
    """The JSON body: event type, when it happened, the job view."""
    stamp = datetime.fromtimestamp(event.at, UTC).isoformat()
    return json.dumps({"type": event.type, "timestamp": stamp, "data": view})


def post(url: str, body: str, headers: dict[str, str], settings: Settings) -> Outcome:
    """POST to the address resolved now (pinned: no second lookup), no redirects, a few KB read."""
    try:
        address = resolve_destination(url, settings.webhook_hosts())
    except WebhookRefused as e:
        return Outcome(error=f"refused: {e}")
    except ConnectionError as e:
        return Outcome(error=str(e))
    parts = urlsplit(url)
    netloc = f"[{address}]" if ":" in address else address
    pinned = urlunsplit(parts._replace(netloc=f"{netloc}:{parts.port}" if parts.port else netloc))
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    # trust_env off: no proxy from the environment may carry the request elsewhere.
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        request = client.build_request(
            "POST", pinned, content=body.encode(), headers={**headers, "host": parts.netloc},
            extensions={"sni_hostname": parts.hostname or ""})
        try:
            response = client.send(request, stream=True)
            try:
                _read_some(response)
            finally:
                response.close()
        except httpx.HTTPError as e:
            return Outcome(error=f"{type(e).__name__}: {e}"[:200])
    return Outcome(status=response.status_code)


def _read_some(response: httpx.Response) -> None:
    seen = 0
    for chunk in response.iter_raw():
        seen += len(chunk)
        if seen >= MAX_RESPONSE_BYTES:
            return


def backoff(attempts: int, settings: Settings) -> float:
    """Exponential delay after `attempts` tries, with jitter (half to all of it)."""
    delay = min(settings.webhook_retry_max_delay_seconds,
                settings.webhook_retry_base_seconds * 2 ** (attempts - 1))
    return delay * random.uniform(0.5, 1.0)


def deliver(event: Event, outbox: Outbox, settings: Settings) -> str:
    """One try of `event`; records the state in the job and reschedules; returns the state."""
    job = outbox.store.get(event.job_id)
    if job is None or not job.webhook:  # deleted or expired: nobody to tell
        outbox.done(event)
        return "dropped"
    state = dict(job.webhook_deliveries.get(event.hook) or {})
    attempts = int(state.get("attempts", 0)) + 1 if event.hook != "progress" else 1
    first_at = float(state.get("first_at") or time.time())
    body = body_of(event, job_view(job).model_dump(mode="json"))
    outcome = post(job.webhook, body, signed_headers(settings.webhook_secrets(), event.webhook_id,
                                                     body), settings)
    now = time.time()
    state.update(attempts=attempts, first_at=first_at, last_status=outcome.status,
                 last_error=outcome.error, state="pending")
    delay = backoff(attempts, settings)
    if outcome.delivered:
        state.update(state="delivered", delivered_at=now)
        outbox.done(event)
    elif (outcome.retryable and event.hook != "progress"
          and now + delay - first_at <= settings.webhook_retry_window_seconds):
        outbox.retry_at(event, now + delay)
    else:
        state["state"] = "failed"
        outbox.done(event)
    outbox.record(event, state)
    log.info("webhook try", extra={"job_id": event.job_id, "event": event.type,
                                   "webhook_id": event.webhook_id, "attempt": attempts,
                                   "http_status": outcome.status, "error": outcome.error,
                                   "state": state["state"]})
    return state["state"]
