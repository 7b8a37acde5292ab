"""HTTP semantics and body limits hold on every route (issue 13, findings 5 and 6): HEAD answers like GET without
a body, a 405 names the methods the route really takes, and every route refuses a body over its limit with a
413 whose message states the limit actually enforced."""

from __future__ import annotations

import base64
import json
import re

import pytest
from corpus import known_key, real_jpeg
from fastapi.testclient import TestClient

from visual_search.api.request_bodies import body_limit
from visual_search.core.settings import Settings
from visual_search.server.app import create_app

pytestmark = pytest.mark.timeout(120)
MAX_IMAGE = 1_000_000  # a small upload limit keeps the oversized bodies small
ROUTES_WITH_BODIES = ["/search", "/endpoints/any-name/invocations"]


@pytest.fixture(scope="module")
def client(hostile_index_dir, hostile_search_service, tmp_path_factory):
    ui = tmp_path_factory.mktemp("ui")
    (ui / "index.html").write_text("<!doctype html><title>ui</title>")
    settings = Settings(index=str(hostile_index_dir), max_upload_bytes=MAX_IMAGE)
    app = create_app(settings, search_service=hostile_search_service, frontend_dir=ui)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/health", "/stats", "/config.json", "/openapi.json", "/", "IMAGE"])
def test_head_answers_like_get_without_a_body(client, path):
    path = f"/images/{known_key()}" if path == "IMAGE" else path
    get, head = client.get(path), client.head(path)
    assert get.status_code == 200 and head.status_code == 200, (get.status_code, head.status_code)
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers.get("content-length") == get.headers.get("content-length")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/search", "POST"),
        ("HEAD", "/search", "POST"),
        ("PUT", "/search", "POST"),
        ("DELETE", "/search", "POST"),
        ("PATCH", "/search", "POST"),
        ("OPTIONS", "/search", "POST"),
        ("POST", "/health", "GET, HEAD"),
        ("DELETE", "/stats", "GET, HEAD"),
        ("PUT", "/images/x.jpg", "GET, HEAD"),
        ("GET", "/endpoints/e/invocations", "POST"),
    ],
)
def test_a_method_the_route_does_not_take_is_a_405_with_the_real_allow_header(client, method, path, allowed):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    if method != "HEAD":
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert allowed in response.json()["error"]["message"]


def _limit_in(message: str) -> int:
    return int(re.search(r"over the ([\d,]+)-byte limit", message).group(1).replace(",", ""))


@pytest.mark.parametrize("path", ROUTES_WITH_BODIES)
@pytest.mark.parametrize(
    "content_type",
    ["application/json", "image/png", "application/x-image", "multipart/form-data; boundary=x", "text/plain"],
)
def test_every_route_refuses_a_body_over_its_limit_and_states_that_limit(client, path, content_type):
    limit = body_limit(content_type, MAX_IMAGE)
    for body in (b"x" * (limit + 1), iter([b"x" * 65536] * (limit // 65536 + 2))):  # declared, then streamed
        response = client.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code == 413, (path, content_type, response.status_code, response.text[:200])
        error = response.json()["error"]
        assert error["code"] == "payload_too_large" and _limit_in(error["message"]) == limit, error


@pytest.mark.parametrize("path", ROUTES_WITH_BODIES)
def test_a_raw_image_over_the_image_limit_is_refused_on_every_route(client, path):
    """The probe's finding: the SageMaker route took a raw body that /search refused."""
    response = client.post(path, content=b"\xff" * (MAX_IMAGE + 1), headers={"content-type": "image/jpeg"})
    assert response.status_code == 413 and _limit_in(response.json()["error"]["message"]) == MAX_IMAGE


def test_a_json_body_under_the_body_limit_with_an_image_over_the_image_limit_states_the_image_limit(client):
    image = base64.b64encode(b"\xff" * (MAX_IMAGE + 10)).decode()
    response = client.post(
        "/search", content=json.dumps({"image": image}), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and _limit_in(response.json()["error"]["message"]) == MAX_IMAGE


def test_bodies_within_the_limits_still_work_on_both_routes(client):
    assert client.post("/search", content=real_jpeg(), headers={"content-type": "image/jpeg"}).status_code == 200
    response = client.post("/endpoints/e/invocations", content=real_jpeg(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1


@pytest.mark.parametrize(
    ("content_type", "wording"),
    [
        ("application/xml", "cannot read a body of type application/xml"),
        (None, "cannot read a body without a Content-Type header"),
    ],
)
def test_unsupported_body_types_are_named_in_plain_english(client, content_type, wording):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/search", content=b"<x/>", headers=headers)
    assert response.status_code == 415 and response.json()["error"]["message"].startswith(wording)
