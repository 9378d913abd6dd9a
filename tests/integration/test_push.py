"""Issue 9 with real processes: signed webhooks (retries, a killed deliverer, rotation), the
event stream (whole job, resume, tenants, cap) and DELETE of a running job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from api.schemas import JobView
from client import NstClient
from tests.support.receiver import Receiver
from tests.support.sse import read_stream
from tests.support.stack import CONTENT, STYLE, TINY, Stack, long_params

OLD, NEW = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
FILES = [("content", ("c.png", CONTENT)), ("style", ("s.png", STYLE))]


@pytest.fixture(scope="module")
def push(stack_factory) -> Stack:
    """API, one worker and one webhook deliverer; loopback allow-listed, retries shrunk."""
    s = stack_factory(
        "push", NST_WEBHOOK_SECRET=f"{OLD},{NEW}", NST_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        NST_WEBHOOK_TIMEOUT_SECONDS="1", NST_WEBHOOK_RETRY_BASE_SECONDS="0.3",
        NST_WEBHOOK_RETRY_MAX_DELAY_SECONDS="1", NST_WEBHOOK_POLL_SECONDS="0.2",
        NST_MAX_STREAMS_PER_TENANT="2", NST_SSE_HEARTBEAT_SECONDS="1",
    ).start_api()
    s.start_worker()
    s.start_webhooks()
    return s


@pytest.fixture
def alice(push: Stack) -> Iterator[NstClient]:
    with push.client("key-alice") as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def submit(client: NstClient, params: dict, **fields: str) -> dict:
    r = client.http.post("/v1/jobs", files=FILES, data={"params": json.dumps(params), **fields})
    assert r.status_code == 202, r.text
    return r.json()


def wait_view(client: NstClient, job_id: str, condition, timeout: float = 60) -> JobView:
    deadline = time.monotonic() + timeout
    while not condition(view := client.get(job_id)):
        assert time.monotonic() < deadline, f"condition never met: {view}"
        time.sleep(0.1)
    return view


@pytest.mark.timeout(120)
def test_webhook_retried_after_503_under_one_id_signed_with_both_secrets(alice, receiver) -> None:
    receiver.script = [503, 503]
    job = submit(alice, TINY, webhook=receiver.url, webhook_events="start,completed")
    got = receiver.wait(lambda g: any(r.answered == 200 and r.payload["type"] == "job.succeeded"
                                      for r in g))
    completed = [r for r in got if r.payload["type"] == "job.succeeded"]
    assert len({r.headers["webhook-id"] for r in completed}) == 1
    assert len(completed) >= 2 or [r.answered for r in got][:2] == [503, 503]
    for r in got:  # a receiver that knows either secret accepts every delivery
        for secret in (OLD, NEW):
            assert Webhook(secret).verify(r.body, r.headers)["data"]["id"] == job["id"]
    assert {r.payload["type"] for r in got} == {"job.started", "job.succeeded"}
    assert completed[-1].payload["data"]["status"] == "succeeded"
    view = wait_view(alice, job["id"], lambda v: getattr(
        v.webhook.deliveries.get("completed"), "state", None) == "delivered")
    state = view.webhook.deliveries["completed"]
    assert state.attempts == len(completed) and state.last_status == 200
    assert state.delivered_at is not None


@pytest.mark.timeout(180)
def test_event_delivered_after_the_deliverer_is_sigkilled_mid_delivery(push, alice,
                                                                       receiver) -> None:
    receiver.script = [5.0]  # the first try hangs: the deliverer dies while it waits
    job = submit(alice, TINY, webhook=receiver.url)
    receiver.wait(lambda g: len(g) >= 1)
    deliverer = next(p for p in push.procs if "webhooks" in p.args and p.poll() is None)
    deliverer.kill()
    deliverer.wait()
    push.start_webhooks()
    got = receiver.wait(lambda g: any(r.answered == 200 for r in g[1:]), timeout=90)
    assert {r.headers["webhook-id"] for r in got} == {got[0].headers["webhook-id"]}
    assert Webhook(NEW).verify(got[-1].body, got[-1].headers)["data"]["id"] == job["id"]


@pytest.mark.timeout(120)
def test_stream_of_a_whole_job(alice) -> None:
    job = submit(alice, {**TINY, "iterations": [6, 4]})
    events = read_stream(alice, job["id"])  # returns only when the server closes the stream
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    steps = [e["data"]["progress"]["step"] for e in events if e["event"] == "progress"]
    assert steps and steps == sorted(steps)
    assert events[-1]["data"]["progress"]["percent"] == 100.0
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)


@pytest.mark.timeout(120)
def test_stream_resumes_after_last_event_id(alice) -> None:
    job = submit(alice, long_params(40))  # events enough to cut the stream after three
    first = read_stream(alice, job["id"], stop=lambda ev: sum(e["event"] == "progress"
                                                              for e in ev) >= 3)
    rest = read_stream(alice, job["id"], headers={"Last-Event-ID": first[-1]["id"]})
    assert rest and rest[-1]["data"]["status"] == "succeeded"
    ids = [e["id"] for e in first + rest]
    assert len(set(ids)) == len(ids)  # nothing twice
    key = [tuple(map(int, i.split("-"))) for i in ids]
    assert key == sorted(key)  # in order across the reconnect
    bad = alice.http.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 422


def opens(client: NstClient, path: str) -> int:
    """The status a new stream opens with (closed again at once)."""
    with client.http.stream("GET", path) as response:
        return response.status_code


@pytest.mark.timeout(120)
def test_stream_auth_tenant_and_per_tenant_cap(push, alice) -> None:
    job = submit(alice, long_params(400))
    path = f"/v1/jobs/{job['id']}/events"
    with push.client("key-bob") as bob:
        r = bob.http.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    assert httpx.get(push.url + path).status_code == 401
    assert httpx.get(push.url + f"/v1/jobs/{job['id']}", params={"access_token": "key-alice"}
                     ).status_code == 401  # the query key is for the event stream only
    with httpx.Client(base_url=push.url, timeout=30) as browser:  # as EventSource sends it
        opened = [browser.stream("GET", path, params={"access_token": "key-alice"})
                  for _ in range(2)]
        for stream in opened:
            assert stream.__enter__().status_code == 200
        over = alice.http.get(path)
        assert over.status_code == 429 and over.json()["error"]["code"] == "too_many_streams"
        opened[0].__exit__(None, None, None)
        deadline = time.monotonic() + 10  # the server notices the hang-up and frees the slot
        while opens(alice, path) == 429:
            assert time.monotonic() < deadline, "a closed stream kept its slot"
            time.sleep(0.3)
        opened[1].__exit__(None, None, None)
    alice.cancel(job["id"])


@pytest.mark.timeout(120)
def test_delete_running_job_leaves_no_file(push, alice) -> None:
    job = submit(alice, long_params(400))
    wait_view(alice, job["id"], lambda v: v.status == "running" and v.progress
              and v.progress.step > 4)
    store = push.tmp / "data" / "store"
    assert [p for p in store.rglob("*") if p.is_file() and job["id"] in str(p)]
    assert alice.http.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert alice.http.get(f"/v1/jobs/{job['id']}").status_code == 404
    deadline = time.monotonic() + 30  # the attempt stops at its next check and drops its files
    while not push.worker_events("stopped: the lease went to another attempt"):
        assert time.monotonic() < deadline, push.dump_logs()
        time.sleep(0.2)
    assert not [p for p in store.rglob("*") if p.is_file() and job["id"] in str(p)]
