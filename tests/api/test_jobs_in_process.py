"""The /v1/jobs routes in process: create, get, list, cancel, result, preview, errors."""

from __future__ import annotations

import hashlib
import io
import json

from fastapi.testclient import TestClient
from PIL import Image

from service.contract import JobStatus
from service.jobstore import JobStore
from service.queue import TASK_NAME
from service.results import LocalStore, preview_key, result_key

TINY = {"size": 32, "scales": [32], "iterations": [1], "optimizer": "adam"}


def png(size: tuple[int, int] = (40, 32), seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 30 + seed).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


CONTENT, STYLE = png(), png(seed=1)  # fixed bytes: effect_noise is random
FILES = [("content", ("c.png", CONTENT, "image/png")), ("style", ("s.png", STYLE, "image/png"))]


def submit(http: TestClient, params: dict | None = None, **kw) -> dict:
    r = http.post("/v1/jobs", files=FILES, data={"params": json.dumps(params or TINY)}, **kw)
    assert r.status_code == 202, r.text
    return r.json()


def succeed(store: JobStore, results: LocalStore, job_id: str) -> bytes:
    """Run the job's store transitions as a worker would, with a stored result."""
    claim = store.claim(job_id, lease_seconds=30, max_attempts=3)
    data = png((32, 32), 5)
    key = result_key(job_id, claim.token)
    results.put(key, data)
    results.put(preview_key(job_id, claim.token), data)
    store.touch(job_id, claim.token, lease_seconds=30, preview_key=preview_key(job_id, claim.token))
    store.finish(job_id, claim.token, JobStatus.SUCCEEDED,
                 result=(key, hashlib.sha256(data).hexdigest()[:32]))
    return data


def test_create_records_stores_and_publishes(http, store, results, published) -> None:
    job = submit(http)
    assert job["status"] == "queued" and job["links"]["self"] == f"/v1/jobs/{job['id']}"
    assert published.sent == [(TASK_NAME, [job["id"]], "nst")]
    record = store.get(job["id"])
    assert record.tenant == "alice" and results.get(record.inputs["content"])
    assert http.get(f"/v1/jobs/{job['id']}").json()["id"] == job["id"]


def test_another_tenants_job_is_not_found(http) -> None:
    job = submit(http)
    r = http.get(f"/v1/jobs/{job['id']}", headers={"Authorization": "Bearer key-bob"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    assert http.get("/v1/jobs/" + "0" * 32).status_code == 404
    assert http.get("/v1/jobs/not-an-id").status_code == 404


def test_auth_is_required(http) -> None:
    r = http.get("/v1/jobs", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert http.get("/v1/jobs", headers={"Authorization": ""}).status_code == 401


def test_idempotent_replay_returns_the_same_job(http, published) -> None:
    first = submit(http, headers={"Idempotency-Key": "abc"})
    r = http.post("/v1/jobs", files=FILES, data={"params": json.dumps(TINY)},
                  headers={"Idempotency-Key": "abc"})
    assert r.status_code == 200 and r.json()["id"] == first["id"], r.text
    assert r.headers["Idempotent-Replayed"] == "true" and len(published.sent) == 1
    r = http.post("/v1/jobs", files=FILES, data={"params": json.dumps({**TINY, "seed": 3})},
                  headers={"Idempotency-Key": "abc"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_conflict"
    bad = http.post("/v1/jobs", files=FILES, headers={"Idempotency-Key": "has space"})
    assert bad.status_code == 422


def test_tenant_cap_answers_429(http) -> None:
    for _ in range(3):
        submit(http)
    r = http.post("/v1/jobs", files=FILES, data={"params": json.dumps(TINY)})
    assert r.status_code == 429 and r.headers["Retry-After"]


def test_bad_requests_are_refused(http) -> None:
    assert http.post("/v1/jobs", content=b"x", headers={"Content-Type": "text/plain"}
                     ).status_code == 415
    r = http.post("/v1/jobs", files=FILES, data={"params": '{"size": 99999}'})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_params"
    r = http.post("/v1/jobs", files=[("content", ("c.png", b"not an image", "image/png")),
                                     FILES[1]])
    assert r.status_code == 422
    assert http.get("/v1/jobs", params={"cursor": "garbage!"}).status_code == 422


def test_list_pages_with_an_opaque_cursor(http) -> None:
    ids = [submit(http)["id"] for _ in range(3)]
    page = http.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in page["jobs"]] == ids[:0:-1] and page["next_cursor"]
    rest = http.get("/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [j["id"] for j in rest["jobs"]] == ids[:1] and rest["next_cursor"] is None
    http.post(f"/v1/jobs/{ids[0]}/cancel")
    only = http.get("/v1/jobs", params={"status": "canceled"}).json()
    assert [j["id"] for j in only["jobs"]] == ids[:1]


def test_queued_jobs_show_their_queue_position(http, store) -> None:
    ids = [submit(http)["id"] for _ in range(2)]
    third = submit(http)
    assert third["queue_position"] == 3  # the 202 view has it too
    assert [http.get(f"/v1/jobs/{i}").json()["queue_position"] for i in ids] == [1, 2]
    store.claim(ids[0], lease_seconds=30, max_attempts=3)
    listed = {j["id"]: j["queue_position"] for j in http.get("/v1/jobs").json()["jobs"]}
    assert listed == {ids[0]: None, ids[1]: 1, third["id"]: 2}
    assert http.post(f"/v1/jobs/{ids[1]}/cancel").json()["queue_position"] is None


def test_cancel_queued_and_running(http, store) -> None:
    queued = submit(http)
    r = http.post(f"/v1/jobs/{queued['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    running = submit(http)
    store.claim(running["id"], lease_seconds=30, max_attempts=3)
    r = http.post(f"/v1/jobs/{running['id']}/cancel")
    assert r.status_code == 202 and r.json()["cancel_requested"] is True


def test_result_and_preview(http, store, results) -> None:
    job = submit(http)
    r = http.get(f"/v1/jobs/{job['id']}/result")
    assert r.status_code == 409 and r.json()["error"]["job_status"] == "queued"
    assert http.get(f"/v1/jobs/{job['id']}/preview").status_code == 409
    data = succeed(store, results, job["id"])
    r = http.get(f"/v1/jobs/{job['id']}/result")
    assert r.status_code == 200 and r.content == data
    assert http.get(f"/v1/jobs/{job['id']}/result",
                    headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    jpeg = http.get(f"/v1/jobs/{job['id']}/result", params={"format": "jpeg"})
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert http.get(f"/v1/jobs/{job['id']}/preview").content == data
    view = http.get(f"/v1/jobs/{job['id']}").json()
    assert view["status"] == "succeeded" and view["run_seconds"] is not None


def test_a_canceled_job_has_no_preview(http) -> None:
    job = submit(http)
    http.post(f"/v1/jobs/{job['id']}/cancel")
    r = http.get(f"/v1/jobs/{job['id']}/preview")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_preview"


def test_a_result_gone_from_the_store_is_404(http, store, results) -> None:
    job = submit(http)
    succeed(store, results, job["id"])
    results.delete(store.get(job["id"]).result_key)
    r = http.get(f"/v1/jobs/{job['id']}/result")
    assert r.status_code == 404 and r.json()["error"]["code"] == "image_gone"


def test_health_and_readiness(http) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}
