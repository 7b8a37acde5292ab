"""Schema-driven fuzzing of the local HTTP API (schemathesis, in-process ASGI): no 5xx, and every response matches
the OpenAPI schema the server publishes (status documented, content type and body as declared).

Positive generation over every operation of the schema; negative generation (requests that break the schema,
which must be refused with a 4xx) over POST /search. Bounded: 40 examples per operation and mode, no
shrinking phase, well under two minutes. Name resolution is confined to
loopback for the duration, so a generated `url` can never make the server reach beyond this machine.

(schemathesis' own pytest fixture integration does not run under pytest 9, so each operation's hypothesis
strategy is driven here directly.)
"""

from __future__ import annotations

import socket

import pytest
import schemathesis
from hostile_support import assert_no_stack_trace
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The operations this product documents (issue 3); the server may add more, which are fuzzed as well.
OPERATIONS = [("POST", "/search"), ("GET", "/images/{key}"), ("GET", "/health"), ("GET", "/stats")]
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def api_schema(hostile_index_dir, hostile_search_service, tmp_path_factory):
    app = create_app(
        Settings(index=str(hostile_index_dir), url_timeout_s=1.0),
        search_service=hostile_search_service,
        frontend_dir=tmp_path_factory.mktemp("no-ui"),
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def loopback_only_dns(monkeypatch):
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("localhost", "127.0.0.1", "::1", None):
            raise socket.gaierror(socket.EAI_NONAME, "name resolution is disabled in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_the_schema_lists_at_least_the_documented_operations(api_schema):
    listed = {(operation.method.upper(), operation.path) for operation in all_operations(api_schema)}
    assert listed >= set(OPERATIONS)


def all_operations(api_schema) -> list:
    return [result.ok() for result in api_schema.get_all_operations()]


def fuzz(operation, mode: GenerationMode) -> list[int]:
    """Runs the bounded hypothesis search over one operation; returns the statuses seen."""
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    statuses: list[int] = []

    @BOUNDED
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call_and_validate(checks=checks)
        assert response.status_code < 500
        assert_no_stack_trace(response.text)
        statuses.append(response.status_code)

    run()
    return statuses


@pytest.mark.timeout(170)
def test_every_operation_gets_no_5xx_and_schema_conformant_answers_for_valid_requests(api_schema, loopback_only_dns):
    """Every operation the schema lists (new routes are fuzzed without editing this file)."""
    for operation in all_operations(api_schema):
        assert fuzz(operation, GenerationMode.POSITIVE), f"nothing generated for {operation.label}"


@pytest.mark.timeout(110)
def test_search_refuses_requests_that_break_the_schema_with_a_4xx(api_schema, loopback_only_dns):
    statuses = fuzz(api_schema["/search"]["POST"], GenerationMode.NEGATIVE)
    assert statuses and all(400 <= status < 500 for status in statuses)
