"""The OpenAPI document at /openapi.json: short operation ids, binary image responses, a valid spec."""

from __future__ import annotations

from fastapi.testclient import TestClient
from openapi_spec_validator import validate

OPERATION_IDS = {"create_job", "get_job", "list_jobs", "get_result", "get_preview", "cancel_job",
                 "delete_job", "get_job_events", "get_presets", "healthz", "readyz", "metrics"}
BINARY = {"type": "string", "format": "binary"}


def test_operation_ids_binary_images_and_a_valid_spec(http: TestClient) -> None:
    spec = http.get("/openapi.json").json()
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert set(ids) == OPERATION_IDS and len(ids) == len(OPERATION_IDS)

    result = spec["paths"]["/v1/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]
    assert set(result) == {"image/png", "image/jpeg", "image/webp"}
    assert all(media["schema"] == BINARY for media in result.values())
    preview = spec["paths"]["/v1/jobs/{job_id}/preview"]["get"]["responses"]["200"]["content"]
    assert preview["image/png"]["schema"] == BINARY

    validate(spec)  # raises OpenAPIValidationError on an invalid document
