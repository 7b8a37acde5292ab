"""The access levels of the route table (api/routes.py, api/access.py) on both front ends: the local server
(FastAPI) and the Lambda search function (HTTP API events), with the same keys giving the same answers.

open: GET /health; read: POST /search, GET /stats, GET /items (open while no read key); write: POST and DELETE
/items, GET /duplicates (403 writes_disabled while no write key). The write key opens the reading routes too, and
the one key of before (api_key) sets both."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from live_server import index_folder

from visual_search.api.routes import ROUTES
from visual_search.aws.http_events import handle_http_event
from visual_search.bootstrap import build_image_store
from visual_search.bootstrap.aws_runtime import build_search_function_runtime
from visual_search.core.settings import Settings
from visual_search.server.app import create_app

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
BOUNDARY = "access-levels-boundary"


def multipart(key: str) -> bytes:
    photo = (PHOTOS / "hat.jpg").read_bytes()
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="key"\r\n\r\n{key}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class LocalServer:
    def __init__(self, settings: Settings, service, tmp_path: Path):
        self.client = TestClient(create_app(settings, search_service=service, frontend_dir=tmp_path / "no-ui"))

    def call(self, method: str, path: str, key: str | None = None, body: bytes = b"", content_type: str = "") -> int:
        headers = {"content-type": content_type} if content_type else {}
        if key is not None:
            headers["X-API-Key"] = key
        return self.client.request(method, path, content=body or None, headers=headers).status_code


class LambdaFunction:
    def __init__(self, settings: Settings, service, tmp_path: Path):
        self.runtime = build_search_function_runtime(
            settings,
            store=build_image_store(str(tmp_path / "bucket")),
            search_service=service,
            image_url=lambda key: f"https://signed.example/{key}",
        )

    def call(self, method: str, path: str, key: str | None = None, body: bytes = b"", content_type: str = "") -> int:
        headers = {"content-type": content_type} if content_type else {}
        if key is not None:
            headers["x-api-key"] = key
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "headers": headers,
            "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
        return handle_http_event(event, self.runtime.apis, self.runtime.keys)["statusCode"]


@pytest.fixture(params=[LocalServer, LambdaFunction], ids=["local-server", "lambda"])
def front_end(request, tmp_path):
    service = index_folder(PHOTOS, tmp_path / "index")

    def make(**keys: str):
        settings = Settings(index=str(tmp_path / "index"), image_store=str(tmp_path / "uploads"), **keys)
        return request.param(settings, service, tmp_path)

    yield make
    service.index.close()


def search(api, key: str | None = None) -> int:
    return api.call("POST", "/search", key, json.dumps({"key": "hat.jpg"}).encode(), "application/json")


def add(api, key: str | None, item_key: str) -> int:
    return api.call("POST", "/items", key, multipart(item_key), f"multipart/form-data; boundary={BOUNDARY}")


def test_with_only_a_write_key_the_shopper_searches_and_cannot_write(front_end):
    api = front_end(write_api_key="operator-key")
    assert search(api) == 200
    assert api.call("GET", "/stats") == 200 and api.call("GET", "/items") == 200
    for given in (None, "wrong"):
        assert add(api, given, "new/one.jpg") == 401
        assert api.call("DELETE", "/items/hat.jpg", given) == 401
        assert api.call("GET", "/duplicates", given) == 401
    assert api.call("GET", "/duplicates", "operator-key") == 200
    assert add(api, "operator-key", "new/one.jpg") in (201, 202)  # 202 on AWS: the bucket's event indexes it


def test_the_one_key_of_before_guards_both_reads_and_writes(front_end):
    api = front_end(api_key="the-key")
    assert search(api) == 401 and api.call("GET", "/items") == 401
    assert search(api, "the-key") == 200
    assert add(api, None, "new/two.jpg") == 401
    assert add(api, "the-key", "new/two.jpg") in (201, 202)
    assert api.call("GET", "/health") == 200


def test_the_read_key_reads_only_and_the_write_key_opens_both(front_end):
    api = front_end(read_api_key="shop-key", write_api_key="operator-key")
    assert search(api) == 401 and search(api, "shop-key") == 200 and search(api, "operator-key") == 200
    assert add(api, "shop-key", "new/three.jpg") == 401
    assert api.call("GET", "/duplicates", "shop-key") == 401


def test_with_no_key_reads_are_open_and_writes_disabled(front_end):
    api = front_end()
    assert search(api) == 200 and api.call("GET", "/items") == 200
    assert add(api, None, "new/four.jpg") == 403
    assert api.call("GET", "/duplicates") == 403 and api.call("DELETE", "/items/hat.jpg") == 403


def test_search_and_items_are_declared_once_in_the_route_table():
    declared = [(route.method, route.path) for route in ROUTES]
    assert len(declared) == len(set(declared))
    paths = {path for _, path in declared}
    assert {"/search", "/items", "/items/{key:path}"} <= paths
    source = Path(__file__).resolve().parents[2] / "src" / "visual_search"
    mentions = [p for p in source.rglob("*.py") if '"/search"' in p.read_text() or '"/items"' in p.read_text()]
    assert mentions == [source / "api" / "routes.py"], mentions
