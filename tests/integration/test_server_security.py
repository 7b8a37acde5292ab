"""The server's safety: URL queries through the SSRF-safe fetcher, API key, CORS, body caps over real HTTP, no leaks."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from fakes import HistogramEmbedder
from fastapi.testclient import TestClient
from live_server import index_folder, serving
from loopback_image_host import image_host

from visual_search.core.settings import Settings
from visual_search.server.app import create_app
from visual_search.services.search import SearchService

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
HAT = (PHOTOS / "hat.jpg").read_bytes()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("index") / "idx"
    service = index_folder(PHOTOS, directory)
    service.index.close()  # the server opens it again, read-only, through bootstrap
    return directory


@pytest.fixture(scope="module")
def host():
    with image_host(HAT) as (port, log):
        yield port, log


def make_client(index_dir, **settings) -> TestClient:
    """A client for an app built the production way: bootstrap opens the index, only the embedder is injected."""
    return TestClient(create_app(Settings(index=str(index_dir), **settings), embedder=HistogramEmbedder()))


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    return response.json()["error"]


def test_url_queries_to_loopback_are_refused_when_not_allow_listed(index_dir, host):
    port, log = host
    with make_client(index_dir) as client:
        for url in (
            f"http://127.0.0.1:{port}/photo.jpg",
            f"http://localhost:{port}/photo.jpg",
            f"http://[::ffff:127.0.0.1]:{port}/photo.jpg",
            f"http://2130706433:{port}/photo.jpg",
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
        ):
            seen = len(log.requests)
            assert error_of(client.post("/search", json={"url": url}), 400)["code"] == "url_refused"
            assert len(log.requests) == seen


def test_an_allow_listed_url_is_fetched_and_searched(index_dir, host):
    port, _log = host
    with make_client(index_dir, url_allowlist=(f"127.0.0.1:{port}",)) as client:
        response = client.post("/search", json={"url": f"http://127.0.0.1:{port}/photo.jpg", "k": 1})
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["key"] == "hat.jpg"
        assert response.json()["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_url_failures_map_to_400_413_502_and_504(index_dir, host):
    port, _log = host
    base = f"http://127.0.0.1:{port}"
    with make_client(
        index_dir, url_allowlist=(f"127.0.0.1:{port}",), url_timeout_s=1.0, max_upload_bytes=300_000
    ) as client:
        search = lambda path: client.post("/search", json={"url": base + path})  # noqa: E731
        assert error_of(search("/redirect?to=http://127.0.0.2:1/photo.jpg"), 400)["code"] == "url_refused"
        assert error_of(search("/page.html"), 400)["code"] == "url_not_image"
        assert error_of(search("/missing.jpg"), 502)["code"] == "fetch_failed"
        assert error_of(search("/slow.jpg"), 504)["code"] == "fetch_timeout"
        assert error_of(search("/endless.jpg"), 413)["code"] == "payload_too_large"


def test_with_an_api_key_set_search_and_stats_need_it_but_health_and_images_do_not(index_dir):
    with make_client(index_dir, api_key="s3cret-key") as client:
        assert error_of(client.post("/search", json={"key": "hat.jpg"}), 401)["code"] == "unauthorized"
        assert error_of(client.post("/search", json={"key": "hat.jpg"}, headers={"X-API-Key": "wrong"}), 401)
        assert error_of(client.get("/stats"), 401)["code"] == "unauthorized"
        assert client.post("/search", json={"key": "hat.jpg"}, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert client.get("/stats", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/images/hat.jpg").status_code == 200
        assert client.get("/config.json").json()["apiKeyRequired"] is True


def test_without_an_api_key_setting_no_key_is_needed(index_dir):
    with make_client(index_dir) as client:
        assert client.post("/search", json={"key": "hat.jpg"}).status_code == 200


def test_cors_is_off_by_default(index_dir):
    with make_client(index_dir) as client:
        response = client.post("/search", json={"key": "hat.jpg"}, headers={"Origin": "https://evil.example"})
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_configured_origins(index_dir):
    with make_client(index_dir, cors_origins=("https://shop.example",)) as client:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        }
        allowed = client.options("/search", headers={"Origin": "https://shop.example", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
        refused = client.options("/search", headers={"Origin": "https://evil.example", **preflight})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        simple = client.post("/search", json={"key": "hat.jpg"}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers


class ExplodingEmbedder(HistogramEmbedder):
    """A model runtime failing in a way the library does not anticipate."""

    def embed(self, images):
        raise RuntimeError("secret internal detail /opt/model.onnx")


def test_an_unexpected_failure_is_a_500_without_internals(index_dir):
    service = index_folder(PHOTOS, index_dir.parent / "exploding")
    app = create_app(Settings(index=str(index_dir)), search_service=SearchService(ExplodingEmbedder(), service.index))
    with TestClient(app) as client:
        response = client.post("/search", content=HAT, headers={"Content-Type": "image/jpeg"})
        assert error_of(response, 500) == {
            "code": "internal_error",
            "message": "the server failed to handle this request; it has been logged",
        }
        assert "secret" not in response.text


def test_a_streamed_body_over_the_cap_is_refused_over_real_http(index_dir):
    app = create_app(Settings(index=str(index_dir), max_upload_bytes=100_000), embedder=HistogramEmbedder())
    with serving(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        chunks = (b"\xff" * 65536 for _ in range(64))  # 4 MB, chunked: no Content-Length to refuse it by
        response = client.post("/search", content=chunks, headers={"Content-Type": "image/jpeg"})
        assert error_of(response, 413)["code"] == "payload_too_large"
        declared = client.post("/search", content=b"x" * 300_000, headers={"Content-Type": "image/jpeg"})
        assert error_of(declared, 413)["code"] == "payload_too_large"
        ok = client.post("/search", json={"image": base64.b64encode(HAT).decode(), "k": 2})
        assert ok.status_code == 200 and ok.json()["results"][0]["key"] == "hat.jpg"
