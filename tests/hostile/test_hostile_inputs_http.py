"""Every hostile case through the local HTTP API (FastAPI app in-process): the documented status and error code,
never a 5xx or a stack trace, the index unchanged, and the server still healthy afterwards."""

from __future__ import annotations

import json

import pytest
from corpus import FILE_CASES, MULTIPART, FileCase, b64, multipart_body, request_params
from fastapi.testclient import TestClient
from hostile_support import IndexSnapshot, assert_no_stack_trace

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def client(hostile_index_dir, hostile_search_service, tmp_path_factory):
    settings = Settings(index=str(hostile_index_dir))
    app = create_app(settings, search_service=hostile_search_service, frontend_dir=tmp_path_factory.mktemp("no-ui"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def snapshot_before(hostile_index_dir) -> IndexSnapshot:
    return IndexSnapshot.of(hostile_index_dir)


def check_answer(response, expected, index_dir, snapshot_before, client) -> None:
    text = response.text
    assert response.status_code < 500, f"a server error: {response.status_code} {text[:300]}"
    assert_no_stack_trace(text)
    body = response.json()
    if expected.ok:
        assert response.status_code == 200, text[:300]
        assert body["results"], "a good image over a non-empty index must find something"
        assert all(0 <= result["score"] <= 1.0001 for result in body["results"])
        assert all(set(result) >= {"key", "score", "url", "width", "height"} for result in body["results"])
    else:
        assert (response.status_code, body["error"]["code"]) == (expected.status, expected.code), text[:300]
        assert body["error"]["message"].strip()
    assert IndexSnapshot.of(index_dir) == snapshot_before, "a query changed the index"
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def _multipart(case: FileCase) -> tuple[str, bytes]:
    return MULTIPART, multipart_body({"k": "5"}, {"file": (case.filename, case.data, "application/octet-stream")})


def _base64_json(case: FileCase) -> tuple[str, bytes]:
    return "application/json", json.dumps({"image": b64(case.data), "k": 5}).encode()


def _raw(case: FileCase) -> tuple[str, bytes]:
    return "application/octet-stream", case.data


CHANNELS = {"multipart": _multipart, "base64_json": _base64_json, "raw_body": _raw}


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("case", FILE_CASES, ids=lambda case: case.name)
def test_hostile_file_gets_its_documented_answer(case, channel, client, hostile_index_dir, snapshot_before):
    content_type, body = CHANNELS[channel](case)
    response = client.post("/search", content=body, headers={"content-type": content_type})
    check_answer(response, case.expected, hostile_index_dir, snapshot_before, client)


@pytest.mark.parametrize("case", request_params(pytest))
def test_hostile_request_gets_its_documented_answer(case, client, hostile_index_dir, snapshot_before):
    headers = {"content-type": case.content_type} if case.content_type else {}
    response = client.post("/search", content=case.body, headers=headers)
    check_answer(response, case.expected, hostile_index_dir, snapshot_before, client)


def test_more_like_this_excludes_the_query_key_itself(client):
    from corpus import known_key

    response = client.post("/search", json={"key": known_key(), "k": 100})
    assert response.status_code == 200
    keys = [result["key"] for result in response.json()["results"]]
    assert known_key() not in keys and len(keys) == len(set(keys))


def test_k_larger_than_the_index_returns_every_image_once(client, snapshot_before):
    from corpus import real_jpeg

    response = client.post("/search", json={"image": b64(real_jpeg()), "k": 100})
    assert response.status_code == 200
    keys = [result["key"] for result in response.json()["results"]]
    assert len(keys) == snapshot_before.count and len(set(keys)) == len(keys)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_search_are_json_errors_without_5xx(method, client):
    response = client.request(method, "/search")
    # 405 from the API route, or 404 when the static web UI mounted at / answers the GET first.
    assert response.status_code in (404, 405)
    assert response.json()["error"]["code"] in ("method_not_allowed", "not_found")


@pytest.mark.parametrize("key", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%00", "a" * 5000, "/etc/passwd"])
def test_image_route_serves_only_indexed_images(key, client):
    response = client.get(f"/images/{key}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "root:" not in response.text
