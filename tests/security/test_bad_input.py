"""Hostile and broken requests against the real API over real HTTP, one table.

Each case states the answer it must get (HTTP status and error `code`). Around each request the
test snapshots the job store (sequence number, queued set, key count), the broker's queue and
every file under the data directory: a refused request changes none of them; an accepted one
creates exactly one queued job, one message and its generated upload files, and is then canceled.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from PIL import Image

from api.schemas import ErrorResponse
from tests.support.hostile import (
    ALICE_KEY,
    BOB_KEY,
    BOUNDARY,
    CONTENT,
    MULTIPART,
    STORED_NAME,
    STYLE,
    TINY_PARAMS,
    UPLOAD_LIMIT,
    WRONG_KEY,
    Backend,
    Part,
    animated_gif,
    cmyk_jpeg,
    exif_rotated,
    grayscale,
    job_parts,
    multipart,
    noise_png,
    other_format,
    png16,
    png_declaring,
    rgb,
    rgba,
    truncated,
)
from tests.support.stack import Stack

ALICE_JOB = "{alice_job}"  # replaced by the id of a queued job of tenant alice
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"
BIG_FILE = noise_png(UPLOAD_LIMIT + 1)  # one file over NST_MAX_UPLOAD_BYTES
HUGE_BODY = b"\0" * (8 * UPLOAD_LIMIT)  # over the whole-body limit (5 files + framing)
T = '"scales": [32], "iterations": [1], "size": 32'  # tiny schedule inside hostile params


def cut(parts: list[Part], at: bytes, keep_after: int = 0) -> bytes:
    """The multipart body of `parts`, ended early: just before the last `at` (+ keep_after)."""
    body = multipart(parts)
    return body[: body.rindex(at) + keep_after]


@dataclass(frozen=True)
class Case:
    """One request and the answer it must get; `code=None` means accepted (202)."""

    id: str
    status: int
    code: str | None
    parts: list[Part] | None = None  # a multipart/form-data body
    body: bytes | None = None  # a raw body (with `headers` giving its Content-Type)
    method: str = "POST"
    path: str = "/v1/jobs"
    headers: dict[str, str | bytes] = field(default_factory=dict)
    key: str | None = ALICE_KEY
    chunked: bool = False  # send without Content-Length (Transfer-Encoding: chunked)
    stored_size: tuple[int, int] | None = None  # accepted: the stored content's (w, h)
    or_refused: str | None = None  # accepted, or else refused with this code: both are safe


def posting(id: str, status: int, code: str | None, parts: list[Part], **kw) -> Case:
    return Case(id, status, code, parts=parts, **kw)


def params(id: str, text: str, status: int = 422, code: str | None = "invalid_params") -> Case:
    return posting(id, status, code, job_parts(params=text))


def content(id: str, data: bytes, status: int = 422, code: str | None = "invalid_image",
            *, content_name: str = "c.png", **kw) -> Case:
    return posting(id, status, code, job_parts(content=data, content_name=content_name), **kw)


CASES = [
    # --- the body and its parts
    Case("empty-body", 422, "missing_field", body=b"", headers={"Content-Type": MULTIPART}),
    Case("no-boundary", 422, "invalid_multipart", body=b"",
         headers={"Content-Type": "multipart/form-data"}),
    Case("garbage-multipart", 422, "invalid_multipart", body=b"\x00garbage\r\n--",
         headers={"Content-Type": MULTIPART}),
    # A body that ends early (client gone mid-upload) lacks the closing boundary: the incomplete
    # last part must not be dropped silently and the rest run with defaults.
    Case("truncated-body-in-params", 422, "invalid_multipart",
         body=cut(job_parts(), b'"iterations"'), headers={"Content-Type": MULTIPART}),
    Case("truncated-body-in-second-style", 422, "invalid_multipart",
         body=cut(job_parts(styles=(STYLE, STYLE), params=None), b"\xff\xd8", 50),
         headers={"Content-Type": MULTIPART}),
    Case("no-closing-boundary", 422, "invalid_multipart",
         body=cut(job_parts(), f"--{BOUNDARY}--".encode()), headers={"Content-Type": MULTIPART}),
    posting("missing-content", 422, "missing_field", job_parts()[1:]),
    posting("missing-style", 422, "missing_field", job_parts(styles=())),
    posting("unknown-extra-part", 422, "unknown_field",
            job_parts(extra=(Part("evil", b"x", "evil.png"),))),
    posting("unknown-extra-field", 422, "unknown_field",
            job_parts(extra=(Part("callback_url", b"http://169.254.169.254/", None),))),
    posting("two-content-parts", 422, "invalid_request",
            job_parts(extra=(Part("content", CONTENT, "c2.png"),))),
    posting("content-as-text-field", 422, "invalid_image",
            [Part("content", CONTENT, None), *job_parts()[1:]]),
    posting("params-twice", 422, "invalid_params",
            job_parts(extra=(Part("params", b"{}", None),))),
    posting("params-as-file", 422, "invalid_params",
            [*job_parts(params=None), Part("params", TINY_PARAMS.encode(), "p.json")]),
    posting("too-many-text-fields", 422, "invalid_multipart",
            job_parts(extra=tuple(Part(f"f{i}", b"x", None) for i in range(7)))),
    posting("part-name-control-chars", 422, "unknown_field",
            job_parts(extra=(Part("sty\x00le\x1b", STYLE, "s.png"),))),
    params("params-over-64-kib", '{"seed": 1, "pad": "' + "x" * 70000 + '"}',
           code="invalid_multipart"),
    posting("too-many-styles", 422, "too_many_styles", job_parts(styles=(STYLE,) * 5)),
    posting("far-too-many-files", 422, "invalid_multipart", job_parts(styles=(STYLE,) * 12)),
    Case("json-content-type", 415, "unsupported_media_type", body=b'{"content": "x"}',
         headers={"Content-Type": "application/json"}),
    Case("urlencoded-content-type", 415, "unsupported_media_type", body=b"content=x&style=y",
         headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Case("no-content-type", 415, "unsupported_media_type", body=multipart(job_parts())),
    posting("gzip-content-encoding", 415, "unsupported_media_type", job_parts(),
            headers={"Content-Encoding": "gzip"}),
    # --- the images
    posting("zero-byte-content", 422, "empty_file", job_parts(content=b"")),
    posting("zero-byte-style", 422, "empty_file", job_parts(styles=(b"",))),
    content("text-named-jpg", b"just some text, not a JPEG\n" * 10, content_name="photo.jpg"),
    content("truncated-jpeg", truncated(rgb((64, 64), "JPEG"))),
    content("truncated-png", truncated(rgb((64, 64)))),
    content("png-header-50000x50000", png_declaring(50000, 50000), code="image_too_large"),
    content("png-header-0x0", png_declaring(0, 0)),
    content("animated-gif", animated_gif(), code="animated_image"),
    content("refused-format-tga", other_format("TGA"), code="unsupported_image"),
    posting("animated-gif-style", 422, "animated_image", job_parts(styles=(animated_gif(),))),
    content("file-over-limit", BIG_FILE, status=413, code="payload_too_large"),
    posting("style-over-limit", 413, "payload_too_large", job_parts(styles=(BIG_FILE,))),
    posting("style-png-header-50000x50000", 422, "image_too_large",
            job_parts(styles=(png_declaring(50000, 50000),))),
    content("file-over-limit-chunked", BIG_FILE, status=413, code="payload_too_large",
            chunked=True),
    Case("body-over-limit", 413, "payload_too_large", body=multipart(job_parts(content=HUGE_BODY)),
         headers={"Content-Type": MULTIPART}),
    Case("body-over-limit-chunked", 413, "payload_too_large",
         body=multipart(job_parts(content=HUGE_BODY)), headers={"Content-Type": MULTIPART},
         chunked=True),
    # --- the params
    params("params-not-json", "{size: 64"),
    params("params-not-an-object", "[1, 2]"),
    params("params-size-out-of-range", '{"size": 100000}'),
    params("params-size-over-service-max", '{"size": 4096, "scales": [4096], "iterations": [1]}'),
    params("params-iterations-over-max-steps", '{"size": 32, "scales": [32], "iterations": [5000]}'),
    params("params-negative-weight", f'{{{T}, "style_weight": -1}}'),
    params("params-wrong-type", '{"size": "big"}'),
    params("params-wrong-type-nested", f'{{{T}, "style_layers": ["relu1_1"]}}'),
    params("params-unknown-key", f'{{{T}, "__class__": "os.system"}}'),
    params("params-device-not-auto", f'{{{T}, "device": "cuda"}}'),
    params("params-init-image", f'{{{T}, "init": "image"}}'),
    params("params-deeply-nested", "[" * 20000 + "]" * 20000),
    params("params-huge-integer", '{"seed": ' + "9" * 5000 + "}"),
    params("params-nan-layer-weight", f'{{{T}, "content_layers": {{"relu4_2": NaN}}}}'),
    params("params-infinite-layer-weight", f'{{{T}, "style_layers": {{"relu1_1": Infinity}}}}'),
    params("params-nan-style-blend", f'{{{T}, "style_blend": [NaN]}}'),
    params("params-infinite-weight", f'{{{T}, "tv_weight": Infinity}}'),
    # --- file names: accepted, but never used to name what is stored
    posting("filename-path-traversal", 202, None,
            job_parts(content_name="../../../../etc/passwd.png"), or_refused="invalid_multipart"),
    posting("filename-absolute", 202, None, job_parts(content_name="/tmp/owned.png"),
            or_refused="invalid_multipart"),
    posting("filename-control-chars", 202, None,
            job_parts(content_name="a\x00b\x1b[31m\u202egnp.exe"), or_refused="invalid_multipart"),
    posting("filename-header-injection", 202, None,
            job_parts(content_name='x.png"\r\nContent-Type: text/html\r\nX-Evil: "1'),
            or_refused="invalid_multipart"),
    posting("filename-crlf-broken-header", 202, None, job_parts(content_name="a\x01\r\nb.png"),
            or_refused="invalid_multipart"),
    # --- unusual but valid images: accepted (202), stored as oriented 8-bit RGB PNG
    content("cmyk-jpeg", cmyk_jpeg(), 202, None, stored_size=(48, 32)),
    content("png-16-bit", png16(), 202, None, stored_size=(40, 30)),
    content("grayscale", grayscale(), 202, None, stored_size=(40, 30)),
    content("rgba", rgba(), 202, None, stored_size=(48, 32)),
    content("exif-rotated", exif_rotated((60, 40)), 202, None, stored_size=(40, 60)),
    # --- auth and tenants: another tenant's job is a 404, never a 403
    Case("missing-api-key", 401, "unauthorized", job_parts(), key=None),
    Case("wrong-api-key", 401, "unauthorized", job_parts(), key=WRONG_KEY),
    Case("basic-auth-scheme", 401, "unauthorized", job_parts(), key=None,
         headers={"Authorization": "Basic c2stYWxpY2U6"}),
    Case("empty-bearer", 401, "unauthorized", job_parts(), key=None,
         headers={"Authorization": "Bearer"}),
    Case("other-tenant-get", 404, "job_not_found", method="GET", path=f"/v1/jobs/{ALICE_JOB}",
         key=BOB_KEY),
    Case("other-tenant-result", 404, "job_not_found", method="GET",
         path=f"/v1/jobs/{ALICE_JOB}/result", key=BOB_KEY),
    Case("other-tenant-preview", 404, "job_not_found", method="GET",
         path=f"/v1/jobs/{ALICE_JOB}/preview", key=BOB_KEY),
    Case("other-tenant-cancel", 404, "job_not_found", path=f"/v1/jobs/{ALICE_JOB}/cancel",
         key=BOB_KEY),
    Case("own-result-while-queued", 409, "job_not_succeeded", method="GET",
         path=f"/v1/jobs/{ALICE_JOB}/result"),  # the owner gets 409 where others get 404
    Case("other-tenant-no-key-get", 401, "unauthorized", method="GET",
         path=f"/v1/jobs/{ALICE_JOB}", key=None),
    # --- ids, routes, methods, queries
    Case("unknown-job-id", 404, "job_not_found", method="GET", path=f"/v1/jobs/{UNKNOWN_ID}"),
    Case("unknown-job-id-cancel", 404, "job_not_found", path=f"/v1/jobs/{UNKNOWN_ID}/cancel"),
    Case("non-hex-job-id", 404, "job_not_found", method="GET", path="/v1/jobs/nst:seq"),
    Case("job-id-path-traversal", 404, "not_found", method="GET",
         path="/v1/jobs/..%2F..%2F..%2Fetc%2Fpasswd"),
    Case("overlong-job-id", 422, "invalid_request", method="GET", path="/v1/jobs/" + "a" * 65),
    Case("unknown-route", 404, "not_found", method="GET", path="/v1/nothing-here"),
    Case("wrong-method-delete", 405, "method_not_allowed", method="DELETE", path="/v1/jobs"),
    Case("wrong-method-put-job", 405, "method_not_allowed", method="PUT",
         path=f"/v1/jobs/{ALICE_JOB}"),
    Case("list-limit-too-big", 422, "invalid_request", method="GET", path="/v1/jobs?limit=100000"),
    Case("list-bad-cursor", 422, "invalid_cursor", method="GET", path="/v1/jobs?cursor=%00%ff"),
    Case("list-unknown-status", 422, "invalid_request", method="GET", path="/v1/jobs?status=evil"),
    Case("result-unknown-format", 422, "invalid_request", method="GET",
         path=f"/v1/jobs/{ALICE_JOB}/result?format=gif"),
    # --- Idempotency-Key: checked before the body is read
    posting("idempotency-key-too-long", 422, "invalid_idempotency_key", job_parts(),
            headers={"Idempotency-Key": "k" * 256}),
    posting("idempotency-key-control-chars", 422, "invalid_idempotency_key", job_parts(),
            headers={"Idempotency-Key": "abc\tdef"}),
    posting("idempotency-key-spaces", 422, "invalid_idempotency_key", job_parts(),
            headers={"Idempotency-Key": "a b"}),
    posting("idempotency-key-non-ascii", 422, "invalid_idempotency_key", job_parts(),
            headers={"Idempotency-Key": "ключ".encode()}),
    posting("idempotency-key-empty", 422, "invalid_idempotency_key", job_parts(),
            headers={"Idempotency-Key": ""}),
]


OBSERVED: list[dict] = []  # every answer, written to $NST_BAD_INPUT_REPORT (docs/RELIABILITY.md)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if path := os.environ.get("NST_BAD_INPUT_REPORT"):
        with open(path, "w") as f:
            json.dump(OBSERVED, f, indent=1)


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), 16384):
        yield data[i:i + 16384]


def send(url: str, case: Case, alice_job: str) -> httpx.Response:
    """The case's request, exactly as described, on a fresh connection."""
    headers: dict[str, str | bytes] = {}
    if case.key:
        headers["Authorization"] = f"Bearer {case.key}"
    body = case.body
    if case.parts is not None:
        body = multipart(case.parts)
        headers["Content-Type"] = MULTIPART
    headers.update(case.headers)
    content = _chunks(body) if case.chunked and body is not None else body
    with httpx.Client(base_url=url, timeout=30) as http:
        return http.request(case.method, case.path.replace(ALICE_JOB, alice_job),
                            content=content, headers=headers)


@pytest.fixture(scope="module")
def alice_job(sec_stack: Stack) -> Iterator[str]:
    """A queued job of tenant alice (no worker runs it), for the cross-tenant cases."""
    parts = job_parts()
    r = httpx.post(f"{sec_stack.url}/v1/jobs", content=multipart(parts),
                   headers={"Content-Type": MULTIPART, "Authorization": f"Bearer {ALICE_KEY}"})
    assert r.status_code == 202, r.text
    yield r.json()["id"]
    _cancel(sec_stack, r.json()["id"])


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request(case: Case, sec_stack: Stack, backend: Backend, alice_job: str) -> None:
    before = backend.snapshot()
    try:
        r = send(sec_stack.url, case, alice_job)
    except httpx.TransportError as e:  # e.g. the server closed an over-limit upload early
        pytest.fail(f"no HTTP answer: {e!r}")
    after = backend.snapshot()
    OBSERVED.append({"id": case.id, "expected": [case.status, case.code, case.or_refused],
                     "status": r.status_code, "code": _code(r), "changed": after != before})
    if case.code is None and not (case.or_refused and r.status_code == 422):
        _accepted(case, r, before, after, sec_stack, backend)
        return
    if r.status_code == 202:  # wrongly accepted: do not leave the job queued for other tests
        _cancel(sec_stack, r.json()["id"])
    assert r.status_code == (422 if case.or_refused else case.status), \
        f"{r.status_code} {r.text[:300]}"
    body = r.json()
    # Exactly our error body, with a code of ErrorCode (validation fails on any other).
    assert body == ErrorResponse.model_validate(body).model_dump(mode="json", exclude_none=True)
    error = body["error"]
    assert error["code"] == (case.or_refused or case.code), error
    assert error["message"]
    assert after == before, "a refused request changed the job store, the queue or the files"
    if case.path.startswith(f"/v1/jobs/{ALICE_JOB}"):  # the other tenant changed nothing
        view = httpx.get(f"{sec_stack.url}/v1/jobs/{alice_job}",
                         headers={"Authorization": f"Bearer {ALICE_KEY}"}).json()
        assert view["status"] == "queued" and view["cancel_requested"] is False


def _accepted(case: Case, r: httpx.Response, before, after, stack: Stack,
              backend: Backend) -> None:
    assert r.status_code == 202, f"{r.status_code} {r.text[:300]}"
    job_id = r.json()["id"]
    try:
        assert r.headers["location"] == f"/v1/jobs/{job_id}"
        assert after.jobs_created == before.jobs_created + 1
        assert after.messages == before.messages + 1
        new = after.files - before.files
        assert new == {f"uploads/{job_id}/content.png", f"uploads/{job_id}/style-0.png"}, new
        assert all(STORED_NAME.match(name) for name in after.files), sorted(after.files)
        # No file or folder anywhere under the stack's directory is named after the request.
        names = {p.name for p in stack.tmp.rglob("*")}
        assert not names & {"passwd.png", "passwd", "owned.png", "etc", "gnp.exe"}, names
        with Image.open(io.BytesIO(backend.store_root.joinpath(
                f"uploads/{job_id}/content.png").read_bytes())) as stored:
            assert (stored.format, stored.mode) == ("PNG", "RGB")
            if case.stored_size:
                assert stored.size == case.stored_size, "EXIF orientation not applied"
        assert r.json()["params"]["size"] == 32  # the tiny params were taken
    finally:
        _cancel(stack, job_id)


def _code(r: httpx.Response) -> str | None:
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _cancel(stack: Stack, job_id: str) -> None:
    canceled = httpx.post(f"{stack.url}/v1/jobs/{job_id}/cancel",
                          headers={"Authorization": f"Bearer {ALICE_KEY}"})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
