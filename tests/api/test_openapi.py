"""The OpenAPI document at /openapi.json: short operation ids, binary image responses, our error
body on every error response (a real crash answers the documented 500), the error-code enum, the
typed `params` part, a valid spec."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from nst_core.params import StyleParams
from service.error_codes import ErrorCode
from service.results import LocalStore
from tests.support.stack import png

OPERATION_IDS = {"create_job", "get_job", "list_jobs", "get_result", "get_preview", "cancel_job",
                 "delete_job", "get_job_events", "get_presets", "healthz", "readyz", "metrics"}
BINARY = {"type": "string", "format": "binary"}
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.fixture
def spec(http: TestClient) -> dict:
    return http.get("/openapi.json").json()


def operations(spec: dict) -> list[dict]:
    return [op for ops in spec["paths"].values() for op in ops.values()]


def test_operation_ids_binary_images_and_a_valid_spec(spec: dict) -> None:
    ids = [op["operationId"] for op in operations(spec)]
    assert set(ids) == OPERATION_IDS and len(ids) == len(OPERATION_IDS)

    result = spec["paths"]["/v1/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]
    assert set(result) == {"image/png", "image/jpeg", "image/webp"}
    assert all(media["schema"] == BINARY for media in result.values())
    preview = spec["paths"]["/v1/jobs/{job_id}/preview"]["get"]["responses"]["200"]["content"]
    assert preview == {"image/png": {"schema": BINARY}}

    validate(spec)  # raises OpenAPIValidationError on an invalid document


def test_every_error_response_is_our_error_body(spec: dict) -> None:
    schemas = spec["components"]["schemas"]
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)
    errors = [(op["operationId"], status, response) for op in operations(spec)
              for status, response in op["responses"].items() if int(status) >= 400]
    assert {op for op, status, _ in errors if status == "500"} == OPERATION_IDS  # the crash handler
    for operation, status, response in errors:
        assert response["content"] == {"application/json": {"schema": ERROR_REF}}, (operation, status)

    # Every operation that takes parameters can answer 422 (FastAPI's validation, our body).
    with_params = {op["operationId"] for op in operations(spec)
                   if op.get("parameters") or op.get("requestBody")}
    assert with_params >= {"create_job", "get_job", "list_jobs", "delete_job", "cancel_job"}
    assert with_params == {op for op, status, _ in errors if status == "422"}


def test_error_code_is_an_enum_of_every_code(spec: dict) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorBody"]["properties"]["code"]["$ref"] == "#/components/schemas/ErrorCode"
    assert schemas["ErrorCode"]["type"] == "string"
    assert schemas["ErrorCode"]["enum"] == [code.value for code in ErrorCode]


def test_params_part_is_style_params_as_json(spec: dict) -> None:
    body = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["properties"]["params"]["$ref"] == "#/components/schemas/StyleParams"
    assert body["encoding"] == {"params": {"contentType": "application/json"}}
    style_params = spec["components"]["schemas"]["StyleParams"]
    assert set(style_params["properties"]) == set(StyleParams.model_fields)
    assert style_params["additionalProperties"] is False  # extra="forbid": typos are refused
    assert style_params["properties"]["size"]["minimum"] == 32


def test_a_crash_answers_the_documented_500(http: TestClient, results: LocalStore) -> None:
    results.root.write_bytes(b"")  # a file where the store's directory goes: uploads raise OSError
    crashing = TestClient(http.app, headers=http.headers, raise_server_exceptions=False)
    images = [("content", ("c.png", png((32, 32), 0), "image/png")),
              ("style", ("s.png", png((32, 32), 1), "image/png"))]
    r = crashing.post("/v1/jobs", files=images)
    assert r.status_code == 500
    assert r.json() == {"error": {"code": ErrorCode.INTERNAL, "message": "internal server error"}}
