"""Learning the query-domain centre from live searches on the local server (issue 20), with the real model: the
state shows in /stats, a refit after the configured number of queries changes the centre the index searches
with, one client's burst counts only its share, and an operator freezes or resets learning with the write key."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from live_server import index_folder

from visual_search.bootstrap import build_embedder
from visual_search.core.settings import Settings
from visual_search.server.app import create_app

FIXTURE_PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
KEY = "operator-key-for-tests"
PHOTOS = sorted(FIXTURE_PHOTOS.glob("*.jpg"))


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(Settings(), bulk=True)


def opensearch_service(url: str, embedder):
    """A SearchService over a new OpenSearch index holding the fixture photos."""
    from visual_search.indexes.opensearch.index import OpenSearchIndex
    from visual_search.services.indexing import IndexingService, IndexItem
    from visual_search.services.search import SearchService

    index = OpenSearchIndex(url, model_id=embedder.model_id, dimension=embedder.dimension)
    items = [IndexItem(p.name, str(p), p.read_bytes) for p in PHOTOS]
    report = IndexingService(embedder, index, batch_size=16, workers=2).index_items(items)
    assert not report.failed
    return SearchService(embedder, index)


@pytest.fixture(params=["embedded", "opensearch"])
def server(request, tmp_path, embedder):
    if request.param == "embedded":
        location = str(tmp_path / "idx")
        service = index_folder(FIXTURE_PHOTOS, tmp_path / "idx", embedder)
    else:
        location = f"{request.getfixturevalue('opensearch_url')}/live-{uuid.uuid4().hex[:10]}"
        service = opensearch_service(location, embedder)
    settings = Settings(
        index=location,
        api_key=KEY,
        image_store=str(tmp_path / "uploads"),
        adapt_live_every=4,
        adapt_live_max_step=2.0,
        adapt_live_client_share=0.5,
    )
    app = create_app(settings, search_service=service, frontend_dir=tmp_path / "no-frontend")
    with TestClient(app, client=("198.51.100.1", 5000)) as first:
        yield app, first, service
    if request.param == "opensearch":
        service.index.drop()
    service.index.close()


def search(client: TestClient, photo: Path) -> dict:
    response = client.post(
        "/search", json={"image": base64.b64encode(photo.read_bytes()).decode(), "k": 3}, headers={"X-API-Key": KEY}
    )
    assert response.status_code == 200, response.text
    return response.json()


def stats(client: TestClient) -> dict:
    response = client.get("/stats", headers={"X-API-Key": KEY})
    assert response.status_code == 200, response.text
    return response.json()


def test_searches_refit_the_centre_after_the_configured_count_and_stats_show_it(server):
    app, first, service = server
    second = TestClient(app, client=("198.51.100.2", 5000))
    before = search(first, PHOTOS[0])
    assert stats(first)["centre"] is None and stats(first)["adaptation"]["queries_counted"] == 1
    for photo in PHOTOS[1:3]:
        search(second, photo)
    search(second, PHOTOS[3])  # this client's share (2 of 4) is used up: not counted
    assert stats(first)["adaptation"]["queries_refused_since_refit"] == 1
    search(first, PHOTOS[4])  # the fourth counted query: a refit
    service.learner.wait()
    state = stats(first)
    assert state["adaptation"]["refits"] == 1 and state["adaptation"]["last_error"] is None
    assert state["centre"] is not None and state["centre"]["centre_id"] == state["adaptation"]["centre_id"]
    assert service.index.centre is not None
    after = search(first, PHOTOS[0])
    assert [r["score"] for r in after["results"]] != [r["score"] for r in before["results"]]
    assert after["results"][0]["key"] == PHOTOS[0].name and after["results"][0]["score"] > 0.999
    assert "198.51.100" not in str(state)


def test_an_operator_freezes_and_resets_learning_with_the_write_key(server):
    _, first, _ = server
    assert first.post("/adaptation", json={"action": "freeze"}).status_code == 401
    assert first.post("/adaptation", json={"action": "sing"}, headers={"X-API-Key": KEY}).status_code == 422
    frozen = first.post("/adaptation", json={"action": "freeze"}, headers={"X-API-Key": KEY})
    assert frozen.status_code == 200 and frozen.json()["frozen"] is True
    search(first, PHOTOS[0])
    assert stats(first)["adaptation"]["queries_counted"] == 0
    first.post("/adaptation", json={"action": "unfreeze"}, headers={"X-API-Key": KEY})
    search(first, PHOTOS[0])
    assert first.get("/adaptation", headers={"X-API-Key": KEY}).json()["queries_counted"] == 1
    reset = first.post("/adaptation", json={"action": "reset"}, headers={"X-API-Key": KEY})
    assert reset.json()["queries_counted"] == 0 and reset.json()["enabled"] is True


def test_learning_is_off_by_default_and_says_so(tmp_path, embedder):
    service = index_folder(FIXTURE_PHOTOS, tmp_path / "idx", embedder)
    settings = Settings(index=str(tmp_path / "idx"), api_key=KEY, image_store=str(tmp_path / "uploads"))
    with TestClient(create_app(settings, search_service=service, frontend_dir=tmp_path / "nf")) as client:
        search(client, PHOTOS[0])
        assert stats(client)["adaptation"] is None
        assert client.get("/adaptation", headers={"X-API-Key": KEY}).json() == {"enabled": False}
        refused = client.post("/adaptation", json={"action": "reset"}, headers={"X-API-Key": KEY})
        assert refused.status_code == 400 and "off" in refused.text
    service.index.close()
