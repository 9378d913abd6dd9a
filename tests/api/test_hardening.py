"""Issue 11 in process: create-and-publish, input limits, multipart edge cases, cursor, ETags."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from kombu.exceptions import OperationalError
from PIL import Image

from api import deps
from api.main import create_app
from service.jobstore import JobStore
from service.results import LocalStore
from service.settings import Settings, get_settings
from tests.api.test_jobs_in_process import FILES, TINY, submit, succeed


def png(size: tuple[int, int], color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def files(content: bytes, style: bytes | None = None) -> list:
    return [("content", ("c.png", content, "image/png")),
            ("style", ("s.png", style or png((32, 32), "blue"), "image/png"))]


def app_client(settings: Settings, store: JobStore, results: LocalStore,
               celery: object) -> TestClient:
    app = create_app(settings)
    app.dependency_overrides.update({get_settings: lambda: settings,
                                     deps.get_store: lambda: store,
                                     deps.get_results: lambda: results,
                                     deps.get_celery: lambda: celery})
    return TestClient(app, headers={"Authorization": "Bearer key-alice"})


class BrokerDown:
    """The broker refuses every publish, as kombu does when Redis is gone."""

    def send_task(self, *args: object, **kw: object) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


@pytest.fixture
def broker_down(api_settings, store, results) -> Iterator[TestClient]:
    with app_client(api_settings, store, results, BrokerDown()) as client:
        yield client


def test_a_failed_publish_still_answers_202_and_the_job_is_left_to_the_reaper(
        broker_down, store) -> None:
    """#3: the job exists, so the client must not be told to retry (that would duplicate it)."""
    r = broker_down.post("/v1/jobs", files=FILES, data={"params": json.dumps(TINY)})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert store.get(job_id).status == "queued"
    assert store.unsent(0) == [job_id]  # a worker's reaper publishes it within seconds


def test_a_published_job_is_not_left_unsent(http, store) -> None:
    submit(http)
    assert store.unsent(0) == []


def test_no_keys_without_open_mode_refuses_every_call(api_settings, store, results,
                                                      published) -> None:
    closed = api_settings.model_copy(update={"api_keys": "", "open_mode": False})
    with app_client(closed, store, results, published) as client:
        assert client.get("/v1/jobs").status_code == 401
        assert client.get("/v1/jobs", headers={"Authorization": ""}).status_code == 401
    open_ = api_settings.model_copy(update={"api_keys": "", "open_mode": True})
    with app_client(open_, store, results, published) as client:
        assert client.get("/v1/jobs", headers={"Authorization": ""}).status_code == 200


def test_the_pixel_limit_is_exact(api_settings, store, results, published) -> None:
    """#10: just over NST_MAX_PIXELS is refused, exactly at it accepted."""
    tight = api_settings.model_copy(update={"max_pixels": 100 * 100})
    with app_client(tight, store, results, published) as client:
        r = client.post("/v1/jobs", files=files(png((101, 100))), data={"params": json.dumps(TINY)})
        assert r.status_code == 422 and r.json()["error"]["code"] == "image_too_large", r.text
        assert r.json()["error"]["field"] == "content"
        ok = client.post("/v1/jobs", files=files(png((100, 100))), data={"params": json.dumps(TINY)})
        assert ok.status_code == 202, ok.text


def test_the_pixels_of_a_whole_request_are_bounded(api_settings, store, results,
                                                   published) -> None:
    """#6: each image under NST_MAX_PIXELS, together over NST_MAX_REQUEST_PIXELS: refused."""
    tight = api_settings.model_copy(update={"max_pixels": 200 * 200,
                                            "max_request_pixels": 300 * 200})
    with app_client(tight, store, results, published) as client:
        r = client.post("/v1/jobs", files=files(png((200, 200)), png((200, 200))),
                        data={"params": json.dumps(TINY)})
        assert r.status_code == 422 and r.json()["error"]["code"] == "image_too_large", r.text
        assert store.queue_depth() == 0 and not results.root.exists()


def test_uploads_are_stored_downscaled_to_what_a_job_can_use(api_settings, store, results,
                                                             published) -> None:
    """#6: a 3000x1500 content with NST_MAX_SIZE=256 is stored at 512x256 (2x the max)."""
    small = api_settings.model_copy(update={"max_size": 256})
    with app_client(small, store, results, published) as client:
        job = submit(client)
        assert Image.open(io.BytesIO(results.get(store.get(job["id"]).inputs["content"]))).size \
            == (40, 32)  # small ones are kept as they are
        r = client.post("/v1/jobs", files=files(png((3000, 1500))),
                        data={"params": json.dumps(TINY)})
        assert r.status_code == 202, r.text
        stored = results.get(store.get(r.json()["id"]).inputs["content"])
        assert Image.open(io.BytesIO(stored)).size == (512, 256)


def test_style_scale_times_size_is_within_the_service_limit(http) -> None:
    r = http.post("/v1/jobs", files=FILES,
                  data={"params": json.dumps({**TINY, "size": 1024, "scales": [1024],
                                              "style_scale": 3.0})})
    assert r.status_code == 422 and r.json()["error"]["field"] == "params.style_scale", r.text


def test_an_aspect_ratio_the_engine_cannot_keep_is_refused(http) -> None:
    """#8: 1x10000 would come back 16 px wide: a clear 422, not another shape."""
    r = http.post("/v1/jobs", files=files(png((10000, 1))), data={"params": json.dumps(TINY)})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_aspect_ratio", r.text
    assert r.json()["error"]["field"] == "content"
    ok = http.post("/v1/jobs", files=files(png((64, 32))), data={"params": json.dumps(TINY)})
    assert ok.status_code == 202, ok.text  # 32 px long side: the short side is 16


def test_max_steps_is_inclusive(api_settings, store, results, published) -> None:
    """#10: exactly NST_MAX_STEPS iterations is allowed, one more is not (not the default)."""
    few = api_settings.model_copy(update={"max_steps": 7})
    with app_client(few, store, results, published) as client:
        at = {**TINY, "scales": [16, 32], "iterations": [3, 4]}
        assert client.post("/v1/jobs", files=FILES, data={"params": json.dumps(at)}
                           ).status_code == 202
        over = {**at, "iterations": [3, 5]}
        r = client.post("/v1/jobs", files=FILES, data={"params": json.dumps(over)})
        assert r.status_code == 422 and r.json()["error"]["field"] == "params.iterations"


def multipart(boundary: str, epilogue: bytes = b"") -> bytes:
    parts = [("content", "c.png", FILES[0][1][1]), ("style", "s.png", FILES[1][1][1])]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{fn}"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n" for name, fn, data in parts)
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n'
             f"{json.dumps(TINY)}\r\n--{boundary}--\r\n").encode()
    return body + epilogue


def test_the_multipart_media_type_is_case_insensitive(http) -> None:
    r = http.post("/v1/jobs", content=multipart("b0und"),
                  headers={"Content-Type": "Multipart/Form-Data; boundary=b0und"})
    assert r.status_code == 202, r.text


def test_a_legal_epilogue_over_1_kib_is_accepted(http) -> None:
    r = http.post("/v1/jobs", content=multipart("b0und", b"x" * 5000),
                  headers={"Content-Type": "multipart/form-data; boundary=b0und"})
    assert r.status_code == 202, r.text
    cut = multipart("b0und")[:-10]  # the closing delimiter never arrives
    r = http.post("/v1/jobs", content=cut,
                  headers={"Content-Type": "multipart/form-data; boundary=b0und"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_multipart"


def test_the_list_cursor_is_opaque_and_per_tenant(http) -> None:
    ids = [submit(http)["id"] for _ in range(3)]
    page = http.get("/v1/jobs", params={"limit": 1}).json()
    cursor = page["next_cursor"]
    assert page["jobs"][0]["id"] == ids[2] and cursor.isascii() and len(cursor) == 22
    assert base64.urlsafe_b64decode(cursor + "==") == bytes.fromhex(ids[2])  # no count in it
    nxt = http.get("/v1/jobs", params={"limit": 1, "cursor": cursor}).json()
    assert nxt["jobs"][0]["id"] == ids[1]
    bob = http.get("/v1/jobs", params={"cursor": cursor}, headers={"Authorization": "Bearer key-bob"})
    assert bob.status_code == 422 and bob.json()["error"]["code"] == "invalid_cursor"


def test_if_none_match_takes_weak_etags_and_star(http, store, results) -> None:
    job = submit(http)
    succeed(store, results, job["id"])
    url = f"/v1/jobs/{job['id']}/result"
    etag = http.get(url).headers["ETag"]
    for header in (etag, f"W/{etag}", "*", f'"other", W/{etag}'):
        assert http.get(url, headers={"If-None-Match": header}).status_code == 304, header
    assert http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
