"""The job API end to end on the main stack: real HTTP, Redis and a Celery worker running the engine."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from PIL import Image

from api.schemas import JobView
from client import NstApiError, NstClient
from tests.support.stack import CONTENT, STYLE, TINY, long_params, png


def wait_for(client: NstClient, job_id: str, condition, timeout: float = 120) -> JobView:
    """Poll the job until `condition(view)` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = client.get(job_id)
        if condition(view):
            return view
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached the condition; last: {view}")


def test_submit_runs_with_progress_and_returns_an_image(alice: NstClient) -> None:
    params = {"size": 64, "scales": [32, 64], "iterations": [8, 4], "optimizer": "adam",
              "preview_every": 2}
    job = alice.submit(CONTENT, [STYLE], params)
    assert job.status in ("queued", "running")
    assert job.links.self == f"/v1/jobs/{job.id}"
    assert job.params["size"] == 64 and job.params["style_weight"] == 1.0  # defaults filled

    seen: list[dict] = []
    final = wait_for(alice, job.id, lambda v: seen.append(v) or v.status not in (
        "queued", "running"))
    running = [v for v in seen if v.status == "running" and v.progress]
    steps = [v.progress.step for v in running]
    assert len(set(steps)) >= 2, f"progress never advanced: {steps}"
    assert steps == sorted(steps)
    assert final.status == "succeeded", final
    assert final.attempts == 1 and final.error is None
    assert final.progress.percent == 100.0
    assert final.queue_seconds >= 0 and final.run_seconds > 0

    img = Image.open(io.BytesIO(alice.result(job.id)))
    assert img.format == "PNG" and max(img.size) == 64 and img.size == (64, 43)
    for fmt, pil_name in (("jpeg", "JPEG"), ("webp", "WEBP")):
        assert Image.open(io.BytesIO(alice.result(job.id, fmt))).format == pil_name
    preview = Image.open(io.BytesIO(alice.preview(job.id)))
    assert preview.format == "PNG"

    first = alice.http.get(f"/v1/jobs/{job.id}/result")
    etag = first.headers["etag"]
    again = alice.http.get(f"/v1/jobs/{job.id}/result", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_result_is_409_until_succeeded(alice: NstClient) -> None:
    job = alice.submit(CONTENT, [STYLE], long_params())
    with pytest.raises(NstApiError) as e:
        alice.result(job.id)
    assert e.value.status == 409 and e.value.code == "job_not_succeeded"
    body = alice.http.get(f"/v1/jobs/{job.id}/result").json()
    assert body["error"]["job_status"] in ("queued", "running")
    alice.cancel(job.id)
    wait_for(alice, job.id, lambda v: v.status == "canceled")


def test_cancel_running_and_queued(alice: NstClient) -> None:
    running = alice.submit(CONTENT, [STYLE], long_params())
    wait_for(alice, running.id, lambda v: v.status == "running" and v.progress
             and v.progress.step > 0)
    queued = alice.submit(CONTENT, [STYLE], TINY)  # the only worker is busy

    canceled = alice.cancel(queued.id)
    assert canceled.status == "canceled"
    assert alice.http.post(f"/v1/jobs/{queued.id}/cancel").status_code == 200  # idempotent

    response = alice.http.post(f"/v1/jobs/{running.id}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    asked = time.monotonic()
    final = wait_for(alice, running.id, lambda v: v.status != "running", timeout=30)
    assert final.status == "canceled"
    assert time.monotonic() - asked < 10
    assert final.progress.step < final.progress.total_steps

    time.sleep(1.5)  # the worker is free again: the canceled queued job must never start
    never = alice.get(queued.id)
    assert never.status == "canceled" and never.attempts == 0
    assert never.started_at is None

    done = alice.submit(CONTENT, [STYLE], TINY)
    wait_for(alice, done.id, lambda v: v.status == "succeeded")
    after = alice.http.post(f"/v1/jobs/{done.id}/cancel")
    assert after.status_code == 200 and after.json()["status"] == "succeeded"


def test_idempotency_key(alice: NstClient, bob: NstClient) -> None:
    key = f"idem-{time.time_ns()}"
    first = alice.submit(CONTENT, [STYLE], long_params(), idempotency_key=key)
    again = alice.http.post(
        "/v1/jobs", headers={"Idempotency-Key": key},
        files=[("content", ("c.png", CONTENT)), ("style", ("s.png", STYLE))],
        data={"params": '{"size": 64, "scales": [64], "iterations": [400], "optimizer": "adam",'
                        ' "preview_every": 2}'})
    assert again.status_code == 200 and again.json()["id"] == first.id
    assert again.headers["idempotent-replayed"] == "true"

    with pytest.raises(NstApiError) as e:
        alice.submit(CONTENT, [png((64, 64), 3)], long_params(), idempotency_key=key)
    assert e.value.status == 422 and e.value.code == "idempotency_conflict"

    other = bob.submit(CONTENT, [STYLE], long_params(), idempotency_key=key)  # keys are per tenant
    assert other.id != first.id

    with pytest.raises(NstApiError) as e:
        alice.submit(CONTENT, [STYLE], TINY, idempotency_key="bad key with spaces")
    assert e.value.code == "invalid_idempotency_key"
    for client, job in ((alice, first), (bob, other)):
        client.cancel(job.id)


def test_tenants_are_isolated(stack, alice: NstClient, bob: NstClient) -> None:
    job = alice.submit(CONTENT, [STYLE], long_params())
    for call in (lambda: bob.get(job.id), lambda: bob.cancel(job.id),
                 lambda: bob.result(job.id), lambda: bob.preview(job.id)):
        with pytest.raises(NstApiError) as e:
            call()
        assert e.value.status == 404 and e.value.code == "job_not_found"
    assert job.id not in {j.id for j in bob.list(limit=100).jobs}
    with stack.client("key-alice-2") as rotated:  # a second key of the same tenant
        assert rotated.get(job.id).id == job.id
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic a2V5"}):
        r = httpx.get(f"{stack.url}/v1/jobs/{job.id}", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    alice.cancel(job.id)


def test_list_newest_first_with_cursor_and_status_filter(stack) -> None:
    with stack.client("key-carol") as carol:
        ids = []
        for _ in range(3):
            job = carol.submit(CONTENT, [STYLE], long_params())
            carol.cancel(job.id)
            ids.append(job.id)
        for job_id in ids:
            wait_for(carol, job_id, lambda v: v.status == "canceled")
        page1 = carol.list(limit=2)
        assert [j.id for j in page1.jobs] == ids[::-1][:2]
        page2 = carol.list(limit=2, cursor=page1.next_cursor)
        assert [j.id for j in page2.jobs] == ids[:1] and page2.next_cursor is None
        assert len(carol.list(status="canceled").jobs) == 3
        assert carol.list(status="succeeded").jobs == []
        with pytest.raises(NstApiError) as e:
            carol.list(cursor="garbage!")
        assert e.value.code == "invalid_cursor"


def test_per_tenant_cap_is_429_with_retry_after(stack) -> None:
    with stack.client("key-dave") as dave:
        jobs = [dave.submit(CONTENT, [STYLE], long_params()) for _ in range(3)]
        r = dave.http.post("/v1/jobs", files=[("content", ("c", CONTENT)), ("style", ("s", STYLE))])
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_active_jobs"
        assert int(r.headers["retry-after"]) > 0
        for job in jobs:
            dave.cancel(job.id)


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"method": "GET", "url": "/v1/nothing"}, 404, "not_found"),
        ({"method": "DELETE", "url": "/v1/jobs"}, 405, "method_not_allowed"),
        ({"method": "GET", "url": "/v1/jobs/0123"}, 404, "job_not_found"),
        ({"method": "POST", "url": "/v1/jobs", "json": {"a": 1}}, 415, "unsupported_media_type"),
        ({"method": "GET", "url": "/v1/jobs", "params": {"limit": 0}}, 422, "invalid_request"),
        ({"method": "POST", "url": "/v1/jobs", "files": [("content", ("c", CONTENT))]},
         422, "missing_field"),
        ({"method": "POST", "url": "/v1/jobs", "data": {"params": "{"},
          "files": [("content", ("c", CONTENT)), ("style", ("s", STYLE))]}, 422, "invalid_params"),
        ({"method": "POST", "url": "/v1/jobs", "data": {"params": '{"size": 100000}'},
          "files": [("content", ("c", CONTENT)), ("style", ("s", STYLE))]}, 422, "invalid_params"),
        ({"method": "POST", "url": "/v1/jobs", "data": {"params": '{"device": "cuda"}'},
          "files": [("content", ("c", CONTENT)), ("style", ("s", STYLE))]}, 422, "invalid_params"),
        ({"method": "POST", "url": "/v1/jobs",
          "files": [("content", ("c.jpg", b"not an image")), ("style", ("s", STYLE))]},
         422, "invalid_image"),
    ],
)
def test_errors_have_one_shape(alice: NstClient, request_kwargs: dict, status: int,
                               code: str) -> None:
    r = alice.http.request(**request_kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"]


def test_oversized_upload_is_refused_with_and_without_content_length(stack) -> None:
    big = b"\0" * (6 * 1024 * 1024)  # over the body limit: 5 images of 1 MiB plus framing
    files = [("content", ("c.png", big)), ("style", ("s.png", STYLE))]
    with stack.client() as alice:
        r = alice.http.post("/v1/jobs", files=files)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        request = alice.http.build_request("POST", "/v1/jobs", files=files)
        body = request.read()

        def chunks():  # no Content-Length: Transfer-Encoding chunked
            for i in range(0, len(body), 65536):
                yield body[i:i + 65536]

        headers = {"Content-Type": request.headers["content-type"]}
        r = alice.http.post("/v1/jobs", content=chunks(), headers=headers)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_health_readiness_metrics_and_docs(stack, alice: NstClient) -> None:
    assert httpx.get(f"{stack.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{stack.url}/readyz").status_code == 200
    metrics = httpx.get(f"{stack.url}/metrics").text
    # nst_job_run_seconds has a series per outcome and preset once one ran: its TYPE line is always
    for name in ("nst_jobs_finished_total{status=\"succeeded\"}", "nst_queue_depth",
                 "# TYPE nst_job_run_seconds histogram", "nst_job_queue_wait_seconds_count",
                 "nst_http_request_duration_seconds_bucket"):
        assert name in metrics
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result",
            "/v1/jobs/{job_id}/preview", "/v1/jobs/{job_id}/cancel"} <= set(spec["paths"])
    create = spec["paths"]["/v1/jobs"]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
    assert {"413", "415", "422", "429", "503"} <= set(create["responses"])
