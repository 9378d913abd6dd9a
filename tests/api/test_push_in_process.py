"""Issue 9 in process: webhook validation, DELETE, presets, expires_at and the two view fixes."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api import deps
from api.main import create_app
from api.routes.presets import TYPICAL_SECONDS_512_CPU
from nst_core.params import PRESETS, StyleParams
from service.jobstore import JobStore
from service.results import LocalStore
from service.settings import Settings
from tests.api.test_jobs_in_process import FILES, TINY, submit, succeed

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def submit_hooked(http: TestClient, **fields: str) -> dict:
    """Submit TINY with extra form fields (webhook, webhook_events)."""
    r = http.post("/v1/jobs", files=FILES, data={"params": json.dumps(TINY), **fields})
    assert r.status_code == 202, r.text
    return r.json()


@pytest.fixture
def hooked(api_settings: Settings, store: JobStore, results: LocalStore, published):
    """A TestClient as alice on a server with webhooks enabled (nothing allow-listed)."""
    settings = api_settings.model_copy(update={"webhook_secret": SECRET})
    app = create_app(settings)
    app.dependency_overrides.update({
        deps.get_settings: lambda: settings, deps.get_store: lambda: store,
        deps.get_results: lambda: results, deps.get_celery: lambda: published,
    })
    with TestClient(app, headers={"Authorization": "Bearer key-alice"}) as client:
        yield client


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://[::1]/hook", "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data", "http://[::ffff:127.0.0.1]/hook",
    "http://localhost:8080/hook", "file:///etc/passwd", "gopher://example.com/", "https:///x",
    "not a url", "http://example.com:99999/",
])
def test_refused_webhook_is_422_and_creates_nothing(hooked, store, url) -> None:
    r = hooked.post("/v1/jobs", files=FILES, data={"webhook": url})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {"code": "invalid_webhook", "message": r.json()["error"]["message"],
                                 "field": "webhook"}
    assert store.list("alice", limit=10) == ([], None)


def test_webhook_events_validated_and_shown(hooked, store) -> None:
    r = hooked.post("/v1/jobs", files=FILES, data={"webhook": "https://example.com/h",
                                                   "webhook_events": "start,nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "webhook_events"
    job = submit_hooked(hooked, webhook="https://example.com/h", webhook_events="completed,start")
    assert job["webhook"] == {"url": "https://example.com/h", "events": ["completed", "start"],
                              "deliveries": {}}
    default = submit_hooked(hooked, webhook="https://example.com/h")
    assert default["webhook"]["events"] == ["completed"]


def test_webhook_refused_without_a_secret(http) -> None:
    r = http.post("/v1/jobs", files=FILES, data={"webhook": "https://example.com/h"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_webhook"


def test_transitions_fill_the_outbox_and_the_event_stream(hooked, store, results) -> None:
    job = submit_hooked(hooked, webhook="https://example.com/h", webhook_events="start,completed")
    succeed(store, results, job["id"])
    due = store.r.zrange(f"{store.prefix}webhooks:due", 0, -1)
    assert [m.split("|")[1:3] for m in due] == [["start", "job.started"],
                                                ["completed", "job.succeeded"]]
    kinds = [(f["kind"], f["status"]) for _, f in store.r.xrange(store.events_key(job["id"]))]
    assert kinds == [("status", "queued"), ("status", "running"), ("status", "succeeded")]
    view = hooked.get(f"/v1/jobs/{job['id']}").json()
    assert view["webhook"]["deliveries"]["completed"]["state"] == "pending"


def test_delete_removes_record_and_files(http, store, results) -> None:
    job = submit(http)
    succeed(store, results, job["id"])
    assert any(results.root.rglob("*.png"))
    assert http.delete(f"/v1/jobs/{job['id']}", headers={"Authorization": "Bearer key-bob"}
                       ).status_code == 404  # another tenant's: untouched
    assert http.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert http.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert http.delete(f"/v1/jobs/{job['id']}").status_code == 404
    assert not [p for p in results.root.rglob("*") if p.is_file()]
    assert not store.r.exists(store.events_key(job["id"]))
    assert store.list("alice", limit=10) == ([], None)


def test_delete_running_job_makes_its_attempt_lose(http, store, results) -> None:
    job = submit(http)
    claim = store.claim(job["id"], lease_seconds=30, max_attempts=3)
    assert http.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert store.touch(job["id"], claim.token, lease_seconds=30) == "lost"
    assert store.finish(job["id"], claim.token, "succeeded") is None
    assert not store.r.exists(f"{store.prefix}job:{job['id']}")  # no late write brings it back


def test_cancel_requested_stays_true_after_cancel(http) -> None:
    """Regression: a successful cancel showed cancel_requested false."""
    job = submit(http)
    canceled = http.post(f"/v1/jobs/{job['id']}/cancel").json()
    assert canceled["status"] == "canceled" and canceled["cancel_requested"] is True
    assert http.get(f"/v1/jobs/{job['id']}").json()["cancel_requested"] is True


def test_cancel_of_running_job_keeps_the_flag_when_it_ends_canceled(http, store) -> None:
    job = submit(http)
    claim = store.claim(job["id"], lease_seconds=30, max_attempts=3)
    assert http.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    store.finish(job["id"], claim.token, "canceled")
    assert http.get(f"/v1/jobs/{job['id']}").json()["cancel_requested"] is True


def test_params_show_the_schedule_filled_in(http) -> None:
    """Regression: params kept scales/iterations null although the docs say defaults filled in."""
    job = submit(http, {"size": 200, "preset": "fast"})
    params = http.get(f"/v1/jobs/{job['id']}").json()["params"]
    schedule = StyleParams(size=200, preset="fast").schedule()
    assert params["scales"] == list(schedule.sizes) == [64, 100, 200]
    assert params["iterations"] == list(schedule.iterations)
    assert submit(http)["params"]["scales"] == list(TINY["scales"])


def test_expires_at_and_result_cache_never_outlive_the_job(http, store, results, api_settings
                                                           ) -> None:
    job = submit(http)
    expires = job["expires_at"]
    left = datetime.fromisoformat(expires).timestamp() - time.time()
    assert abs(left - api_settings.job_ttl_seconds) < 60
    succeed(store, results, job["id"])
    store.r.hset(f"{store.prefix}job:{job['id']}", "expires_at", time.time() + 120)
    control = http.get(f"/v1/jobs/{job['id']}/result").headers["cache-control"]
    assert 100 <= int(control.split("max-age=")[1]) <= 120


def test_presets_come_from_the_engine_with_limits(http, api_settings) -> None:
    body = http.get("/v1/presets").json()
    assert {p["name"]: (tuple(p["scales"]), tuple(p["iterations"]), p["previous_scale_style_weight"])
            for p in body["presets"]} == PRESETS
    assert all(p["typical_seconds_512_cpu"] == TYPICAL_SECONDS_512_CPU[p["name"]]
               for p in body["presets"])
    assert body["default"] == "balanced"
    assert body["limits"] == {"max_size": api_settings.max_size,
                              "max_styles": api_settings.max_styles,
                              "max_upload_bytes": api_settings.max_upload_bytes,
                              "max_steps": api_settings.max_steps}
    assert http.get("/v1/presets", headers={"Authorization": "Bearer nope"}).status_code == 401
