"""Schemathesis against the API's own OpenAPI document, authenticated, over real HTTP.

For every operation: no 5xx, every status is documented, and every response (body, headers,
content type) matches the schema. Positive and negative (schema-violating) data; bounded:
25 examples per operation and mode, no deadline.

The document comes from the app factory at collection time (schemathesis' lazy, fixture-based
loader and its parametrize() node ids do not work with pytest 9), and a test checks it is the
one the running API serves; every generated request goes to that real server. The security
stack has no worker, so a job a generated request might create stays queued.
"""

from __future__ import annotations

import logging

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.settings import Settings
from tests.support.hostile import ALICE_KEY, API_KEYS
from tests.support.stack import Stack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
AUTH = {"Authorization": f"Bearer {ALICE_KEY}"}


def _openapi() -> dict:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    from api.main import create_app  # builds an app; its logging set-up is undone below

    try:
        return create_app(Settings(api_keys=API_KEYS)).openapi()
    finally:
        root.handlers[:], root.level = handlers, level


DOCUMENT = _openapi()
OPERATIONS = [result.ok() for result in schemathesis.openapi.from_dict(DOCUMENT)
              .get_all_operations()]
# Negative data needs something to violate: operations without inputs get positive data only.
RUNS = [(op, mode) for op in OPERATIONS for mode in GenerationMode
        if mode is GenerationMode.POSITIVE
        or any((op.path_parameters, op.query, op.headers, op.body))]


def test_the_running_api_serves_this_document(sec_stack: Stack) -> None:
    assert httpx.get(f"{sec_stack.url}/openapi.json").json() == DOCUMENT
    assert len(OPERATIONS) >= 9


@pytest.mark.parametrize(("operation", "mode"), RUNS,
                         ids=[f"{op.method.upper()} {op.path} {mode.value}" for op, mode in RUNS])
def test_api_conforms_to_its_schema(operation, mode: GenerationMode, sec_stack: Stack) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        case.call_and_validate(base_url=sec_stack.url, headers=AUTH, checks=CHECKS, timeout=30)

    check()
