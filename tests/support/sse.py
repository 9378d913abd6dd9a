"""Reading a job's event stream the way a client does: plain httpx, the text/event-stream format."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from client import NstClient


def sse(response: httpx.Response) -> Iterator[dict]:
    """Parse a text/event-stream into events ({id, event, data}); comments are yielded as such."""
    event: dict = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield {"comment": line}
        elif not line:
            if event:
                yield event
            event = {}
        else:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


def read_stream(client: NstClient, job_id: str, headers: dict | None = None, stop=None
                ) -> list[dict]:
    """Events of the job's stream until it closes (or `stop(events)` holds)."""
    events: list[dict] = []
    with client.http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers or {},
                            timeout=30) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse(response):
            if "comment" not in event:
                event["data"] = json.loads(event["data"])
                events.append(event)
            if stop and stop(events):
                break
    return events
