"""With an API key configured, the Lambda search handler refuses /search and /stats without it, as the local server does."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from live_server import index_folder

from visual_search.aws.http_events import handle_http_event
from visual_search.bootstrap import build_image_store
from visual_search.bootstrap.aws_runtime import build_search_function_runtime
from visual_search.core.settings import Settings

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


def event(method: str, path: str, body: bytes = b"", headers: dict | None = None) -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "headers": {"content-type": "image/jpeg", **(headers or {})},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


@pytest.fixture(scope="module")
def answer(tmp_path_factory):
    service = index_folder(PHOTOS, tmp_path_factory.mktemp("index"))
    runtime = build_search_function_runtime(
        Settings(api_key="s3cret"),
        store=build_image_store(str(tmp_path_factory.mktemp("bucket"))),
        search_service=service,
        image_url=lambda key: f"https://signed.example/{key}",
    )

    def call(evt: dict) -> tuple[int, dict]:
        response = handle_http_event(evt, runtime.apis, runtime.keys)
        return response["statusCode"], json.loads(response["body"] or "{}")

    return call


def test_search_and_stats_without_the_key_are_401(answer):
    photo = (PHOTOS / "hat.jpg").read_bytes()
    for evt in (
        event("POST", "/search", photo),
        event("GET", "/stats"),
        event("POST", "/search", photo, {"x-api-key": "wrong"}),
    ):
        status, body = answer(evt)
        assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_the_right_key_is_let_through_and_health_needs_none(answer):
    status, body = answer(event("POST", "/search", (PHOTOS / "hat.jpg").read_bytes(), {"x-api-key": "s3cret"}))
    assert status == 200 and body["results"][0]["key"] == "hat.jpg"
    assert answer(event("GET", "/health"))[0] == 200


def test_before_anything_is_indexed_every_route_answers_a_json_503(tmp_path, monkeypatch):
    from visual_search.aws import handlers

    monkeypatch.setenv("VISUAL_SEARCH_INDEX", str(tmp_path / "no-index-yet"))
    monkeypatch.setenv("VISUAL_SEARCH_IMAGE_STORE", str(tmp_path))
    handlers.reset_cached_services()
    try:
        for evt in (event("GET", "/health"), event("POST", "/search", (PHOTOS / "hat.jpg").read_bytes())):
            response = handlers.search_handler(evt)
            assert response["statusCode"] == 503
            assert json.loads(response["body"])["error"]["code"] == "index_not_ready"
    finally:
        handlers.reset_cached_services()
