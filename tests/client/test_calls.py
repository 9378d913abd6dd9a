"""The SDK's shared answer parsing on real httpx responses: the one error shape, a code this
client does not know yet, and a proxy's page."""

from __future__ import annotations

import httpx
import pytest

from client.calls import api_error


@pytest.mark.parametrize(("body", "code", "field"), [
    (b'{"error": {"code": "job_not_found", "message": "no such job", "field": "id"}}',
     "job_not_found", "id"),
    (b'{"error": {"code": "from_a_newer_server", "message": "no such job"}}',
     "from_a_newer_server", None),
    (b"<html><body>502 Bad Gateway</body></html>", "http_error", None),
])
def test_error_answers_keep_their_code(body: bytes, code: str, field: str | None) -> None:
    error = api_error(httpx.Response(502, content=body))
    assert (error.status, error.code, error.field) == (502, code, field)
    assert str(error).startswith(f"502 {code}: ")
