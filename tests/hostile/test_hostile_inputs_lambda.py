"""Every hostile case through the Lambda search handler (functions/search/app.py) in-process, as HTTP API v2 events:
the same documented status and code as the local server, JSON error bodies, no stack trace, the index unchanged."""

from __future__ import annotations

import base64
import importlib.util
import json

import pytest
from corpus import FILE_CASES, MULTIPART, REPO_ROOT, b64, multipart_body, request_params
from hostile_support import IndexSnapshot, assert_no_stack_trace

from visual_search.aws import handlers
from visual_search.bootstrap import build_image_store
from visual_search.bootstrap.aws_runtime import build_search_function_runtime
from visual_search.core.lazy import Lazy
from visual_search.core.settings import Settings

pytestmark = pytest.mark.timeout(120)


def http_api_event(method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> dict:
    """An HTTP API v2 event as API Gateway sends it: text JSON bodies as text, anything else base64-encoded."""
    headers = {"accept": "*/*", "user-agent": "pytest", "host": "abc123.execute-api.us-east-1.amazonaws.com"}
    if content_type:
        headers["content-type"] = content_type
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": "hostile-test",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "27/Nov/2026:17:00:00 +0000",
            "timeEpoch": 1795798800000,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        headers["content-length"] = str(len(body))
        textual = (content_type or "").startswith("application/json")
        try:
            event["body"] = body.decode("utf-8") if textual else None
        except UnicodeDecodeError:
            event["body"] = None
        if event["body"] is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def load_search_function():
    """functions/search/app.py, the module SAM deploys as SearchFunction (its `lambda_handler`)."""
    path = REPO_ROOT / "functions" / "search" / "app.py"
    spec = importlib.util.spec_from_file_location("search_function_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def invoke(hostile_search_service, tmp_path_factory):
    """Calls the deployed handler, its cached runtime (normally built from the environment: SageMaker,
    OpenSearch, S3) replaced by one over the local search service and a stand-in for presigned URLs."""
    presign = lambda key: f"https://images.example/{key}?X-Amz-Expires=300"  # noqa: E731
    # The fetcher the deployed function builds (allow-list empty): URL queries are refused before any connection.
    runtime = build_search_function_runtime(
        Settings(url_timeout_s=2.0),
        store=build_image_store(str(tmp_path_factory.mktemp("bucket"))),
        search_service=hostile_search_service,
        image_url=presign,
    )
    lambda_handler = load_search_function().lambda_handler
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(handlers, "_search_runtime", Lazy(lambda: runtime))

        def call(event: dict) -> dict:
            response = lambda_handler(event, None)
            assert isinstance(response["statusCode"], int) and isinstance(response["body"], str)
            return response

        yield call


@pytest.fixture(scope="module")
def snapshot_before(hostile_index_dir) -> IndexSnapshot:
    return IndexSnapshot.of(hostile_index_dir)


def check_response(response: dict, expected, index_dir, snapshot_before, invoke) -> None:
    status, text = response["statusCode"], response["body"]
    assert status < 500, f"a server error: {status} {text[:300]}"
    assert_no_stack_trace(text)
    assert response["headers"]["content-type"].startswith("application/json")
    body = json.loads(text)
    if expected.ok:
        assert status == 200, text[:300]
        assert body["results"] and all(result["url"].startswith("https://") for result in body["results"])
    else:
        assert (status, body["error"]["code"]) == (expected.status, expected.code), text[:300]
    assert IndexSnapshot.of(index_dir) == snapshot_before, "a query changed the index"
    health = invoke(http_api_event("GET", "/health"))
    assert health["statusCode"] == 200


@pytest.mark.parametrize("channel", ["multipart", "base64_json", "raw_body"])
@pytest.mark.parametrize("case", FILE_CASES, ids=lambda case: case.name)
def test_hostile_file_gets_its_documented_answer(case, channel, invoke, hostile_index_dir, snapshot_before):
    if channel == "multipart":
        content_type, body = MULTIPART, multipart_body({"k": "5"}, {"file": (case.filename, case.data, "image/jpeg")})
    elif channel == "base64_json":
        content_type, body = "application/json", json.dumps({"image": b64(case.data), "k": 5}).encode()
    else:
        content_type, body = "image/jpeg", case.data
    response = invoke(http_api_event("POST", "/search", body, content_type))
    check_response(response, case.expected, hostile_index_dir, snapshot_before, invoke)


@pytest.mark.parametrize("case", request_params(pytest))
def test_hostile_request_gets_its_documented_answer(case, invoke, hostile_index_dir, snapshot_before):
    response = invoke(http_api_event("POST", "/search", case.body, case.content_type))
    check_response(response, case.expected, hostile_index_dir, snapshot_before, invoke)


def test_body_flagged_base64_that_is_not_base64_is_a_400(invoke):
    event = http_api_event("POST", "/search", b"{}", "application/json")
    event.update(body="%%% not base64 %%%", isBase64Encoded=True)
    response = invoke(event)
    assert response["statusCode"] == 400
    assert_no_stack_trace(response["body"])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda event: event.pop("requestContext"),
        lambda event: event.update(headers=None),
        lambda event: event.update(body=None),
        lambda event: event.update(routeKey="$default", rawPath="/nowhere"),
        lambda event: event["requestContext"]["http"].update(method="DELETE"),
    ],
    ids=["no_request_context", "null_headers", "null_body", "unknown_route", "wrong_method"],
)
def test_malformed_events_get_json_errors_not_exceptions(mutate, invoke):
    event = http_api_event("POST", "/search", b'{"k": 3}', "application/json")
    mutate(event)
    response = invoke(event)
    assert 400 <= response["statusCode"] < 500
    assert "error" in json.loads(response["body"])
    assert_no_stack_trace(response["body"])


@pytest.mark.parametrize("key", ["../../etc/passwd", "", "no-such-key.jpg", "a" * 3000])
def test_image_route_redirects_only_to_indexed_images(key, invoke):
    event = http_api_event("GET", f"/images/{key}")
    event["routeKey"] = "GET /images/{key+}"
    event["pathParameters"] = {"key": key}
    response = invoke(event)
    assert response["statusCode"] == 404
    assert "location" not in response["headers"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://localhost:9/x.jpg",
        "http://10.0.0.1/x.jpg",
        "http://[::ffff:169.254.169.254]/",
        "http://0x7f.1/x.jpg",
        "http://2130706433/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_x",
    ],
)
def test_url_queries_to_private_targets_are_refused_by_the_lambda_handler_too(url, invoke):
    # The fetcher's own SSRF list is tests/unit/test_url_fetch.py; this checks the Lambda path applies it.
    response = invoke(http_api_event("POST", "/search", json.dumps({"url": url}).encode(), "application/json"))
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "url_refused"
