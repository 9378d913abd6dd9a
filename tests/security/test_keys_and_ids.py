"""API keys (constant-time, rotatable, never logged), unguessable job ids, generated file names."""

from __future__ import annotations

import hmac
import json
import re

import httpx
import pytest
from fastapi.security import HTTPAuthorizationCredentials

from api.deps import get_tenant
from api.errors import ApiError
from service.jobstore import new_job_id
from service.settings import Settings
from tests.support.hostile import (
    ALICE_KEY,
    ALICE_KEY_2,
    API_KEYS,
    BOB_KEY,
    JOB_ID,
    MULTIPART,
    STORED_NAME,
    WRONG_KEY,
    Backend,
    Part,
    job_parts,
    multipart,
)
from tests.support.stack import Stack


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _submit(stack: Stack, key: str, parts: list[Part] | None = None) -> httpx.Response:
    return httpx.post(f"{stack.url}/v1/jobs", content=multipart(parts or job_parts()),
                      headers={"Content-Type": MULTIPART, **_auth(key)}, timeout=30)


def _cancel(stack: Stack, job_id: str) -> None:
    r = httpx.post(f"{stack.url}/v1/jobs/{job_id}/cancel", headers=_auth(ALICE_KEY))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("given", [ALICE_KEY, ALICE_KEY_2, BOB_KEY, WRONG_KEY, ALICE_KEY[:-1],
                                   ALICE_KEY + "x", ""])
def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch,
                                                given: str) -> None:
    """hmac.compare_digest against every configured key, with no early exit on a match."""
    settings = Settings(api_keys=API_KEYS)
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=given)
    try:
        tenant = get_tenant(settings, credentials)
    except ApiError as e:
        assert e.status == 401 and e.code == "unauthorized"
        tenant = None
    assert tenant == settings.tenant_by_key().get(given)
    assert len(calls) == len(settings.tenant_by_key()), "not every key was compared"
    assert {a for a, _ in calls} == {k.encode() for k in settings.tenant_by_key()}


def test_rotated_keys_reach_the_same_tenant_and_only_it(sec_stack: Stack) -> None:
    r = _submit(sec_stack, ALICE_KEY)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    try:
        again = httpx.get(f"{sec_stack.url}/v1/jobs/{job_id}", headers=_auth(ALICE_KEY_2))
        assert again.status_code == 200 and again.json()["id"] == job_id
        listed = httpx.get(f"{sec_stack.url}/v1/jobs?limit=100", headers=_auth(ALICE_KEY_2))
        assert job_id in {j["id"] for j in listed.json()["jobs"]}
        theirs = httpx.get(f"{sec_stack.url}/v1/jobs?limit=100", headers=_auth(BOB_KEY))
        assert theirs.status_code == 200
        assert job_id not in {j["id"] for j in theirs.json()["jobs"]}
    finally:
        _cancel(sec_stack, job_id)


def test_keys_and_uploads_never_reach_the_logs(sec_stack: Stack) -> None:
    """Requests with every key (right, rotated, wrong) on success and error paths; then the log."""
    marker = f"UPLOAD-BYTES-{new_job_id()}"
    for key in (ALICE_KEY, ALICE_KEY_2, BOB_KEY, WRONG_KEY):
        httpx.get(f"{sec_stack.url}/v1/jobs", headers=_auth(key))
        httpx.get(f"{sec_stack.url}/v1/jobs/{'0' * 32}", headers=_auth(key))
        httpx.get(f"{sec_stack.url}/v1/jobs?cursor=bad", headers=_auth(key))
        _submit(sec_stack, key, job_parts(content=marker.encode()))  # 422 invalid_image or 401
    ok = _submit(sec_stack, ALICE_KEY)
    _cancel(sec_stack, ok.json()["id"])
    log = next(p for p in sec_stack.logs if p.name.startswith("api")).read_text(errors="replace")
    assert '"status": 202' in log and '"status": 401' in log  # the log did record requests
    for secret in (ALICE_KEY, ALICE_KEY_2, BOB_KEY, WRONG_KEY, marker):
        assert secret not in log, f"{secret[:12]}... appears in the API log"
    assert "Bearer" not in log and "authorization" not in log.lower()


def test_api_logs_are_json_lines(sec_stack: Stack) -> None:
    httpx.get(f"{sec_stack.url}/healthz")
    log = next(p for p in sec_stack.logs if p.name.startswith("api")).read_text(errors="replace")
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(record), line


def test_job_ids_are_random_128_bit_and_url_safe(sec_stack: Stack) -> None:
    ids = []
    for _ in range(6):
        r = _submit(sec_stack, ALICE_KEY)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
        _cancel(sec_stack, ids[-1])
    assert all(JOB_ID.match(i) for i in ids), ids  # 32 hex digits: 128 bits, URL and file safe
    assert len(set(ids)) == len(ids)
    numbers = [int(i, 16) for i in ids]
    steps = {b - a for a, b in zip(numbers, numbers[1:], strict=False)}
    assert len(steps) == len(ids) - 1, "ids advance by a constant step"
    for a in ids:  # independent: no shared prefix beyond chance
        for b in ids:
            if a != b:
                assert not a.startswith(b[:8])

    sample = [int(new_job_id(), 16) for _ in range(2000)]
    assert len(set(sample)) == len(sample)
    for bit in range(128):  # every bit is a coin flip (13 standard deviations of slack)
        ones = sum(n >> bit & 1 for n in sample)
        assert 700 < ones < 1300, f"bit {bit} is set in {ones} of 2000 ids"


def test_stored_file_names_are_generated(sec_stack: Stack, backend: Backend) -> None:
    hostile_names = ["../../x/../passwd.png", "..\\..\\win.ini", "%2e%2e%2fdot.png",
                     "con.png", "a" * 300 + ".png"]
    for name in hostile_names:
        parts = job_parts(content_name=name)
        parts[1] = Part("style", parts[1].data, name)
        r = _submit(sec_stack, ALICE_KEY, parts)
        assert r.status_code in (202, 422), r.text
        if r.status_code == 202:
            _cancel(sec_stack, r.json()["id"])
    stored = backend.files()
    assert stored and all(STORED_NAME.match(f) for f in stored), sorted(stored)
    everything = " ".join(p.as_posix() for p in sec_stack.tmp.rglob("*"))
    for fragment in ("passwd", "win.ini", "dot.png", "con.png", "a" * 40):
        assert not re.search(re.escape(fragment), everything), fragment
