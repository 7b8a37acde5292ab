"""The local server's CORS lets a configured origin's catalogue page delete items (a DELETE preflight) and still
refuses every other origin, and the write route's key rule applies behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import HistogramEmbedder
from fastapi.testclient import TestClient
from live_server import index_folder

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
PREFLIGHT = {"Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "x-api-key"}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("index") / "idx"
    index_folder(PHOTOS, directory).index.close()  # the server opens it again through bootstrap
    return directory


def test_a_configured_origin_may_send_delete_and_others_may_not(index_dir):
    settings = Settings(index=str(index_dir), cors_origins=("https://shop.example",), api_key="s3cret")
    with TestClient(create_app(settings, embedder=HistogramEmbedder())) as client:
        allowed = client.options("/items/hat.jpg", headers={"Origin": "https://shop.example", **PREFLIGHT})
        assert allowed.status_code == 200
        assert "DELETE" in allowed.headers["access-control-allow-methods"]
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        refused = client.options("/items/hat.jpg", headers={"Origin": "https://evil.example", **PREFLIGHT})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        wrong_key = client.delete("/items/hat.jpg", headers={"Origin": "https://shop.example", "X-API-Key": "no"})
        assert wrong_key.status_code == 401 and wrong_key.json()["error"]["code"] == "unauthorized"
