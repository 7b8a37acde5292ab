"""Match colour over HTTP on both index backends: the embedded index and a real OpenSearch node agree on the
colour-weighted ranking, the multipart form takes the weight too, and a bad weight is a 4xx JSON error."""

from __future__ import annotations

import base64
import shutil
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from visual_search.bootstrap import build_embedder
from visual_search.cli.main import main
from visual_search.core.settings import Settings
from visual_search.indexes.opensearch.index import OpenSearchIndex
from visual_search.server.app import create_app

DEMO = Path(__file__).resolve().parents[2] / "demo" / "catalogue"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("colour-catalogue")
    for photo in sorted((DEMO / "images").glob("*.jpg"))[:60]:
        shutil.copy(photo, folder / photo.name)
    return folder


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(Settings())


@pytest.fixture(scope="module")
def embedded_index(catalogue, tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("colour-index"))
    assert main(["index", str(catalogue), "--index", directory, "--quiet"]) == 0
    return directory


@pytest.fixture(scope="module")
def opensearch_index(catalogue, opensearch_url):
    url = f"{opensearch_url}/issue12-colour-{uuid.uuid4().hex[:8]}"
    assert main(["index", str(catalogue), "--index", url, "--quiet"]) == 0
    yield url
    OpenSearchIndex(url, model_id=None, dimension=None).drop()


def _search(index: str, embedder, body: dict) -> list[dict]:
    with TestClient(create_app(Settings(index=index), embedder=embedder)) as client:
        answer = client.post("/search", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["results"]


def test_colour_weighted_search_agrees_on_both_backends(catalogue, embedded_index, opensearch_index, embedder):
    query = sorted(catalogue.glob("*.jpg"))[7]
    body = {"image": base64.b64encode(query.read_bytes()).decode(), "k": 10}
    rankings = {}
    for name, index in (("embedded", embedded_index), ("opensearch", opensearch_index)):
        for weight in (0.0, 0.5):
            rankings[name, weight] = _search(index, embedder, {**body, "colour": weight})
    for weight in (0.0, 0.5):
        embedded, opensearch = rankings["embedded", weight], rankings["opensearch", weight]
        assert embedded[0]["key"] == opensearch[0]["key"] == query.name
        assert embedded[0]["score"] == pytest.approx(1.0, abs=1e-3)
        assert [r["key"] for r in embedded[:5]] == [r["key"] for r in opensearch[:5]]
        for mine, theirs in zip(embedded[:5], opensearch[:5]):
            assert mine["score"] == pytest.approx(theirs["score"], abs=1e-3)
    assert [r["key"] for r in rankings["embedded", 0.0]] != [r["key"] for r in rankings["embedded", 0.5]]


def test_more_like_this_and_multipart_take_the_colour_weight(catalogue, embedded_index, embedder):
    query = sorted(catalogue.glob("*.jpg"))[11]
    with TestClient(create_app(Settings(index=embedded_index), embedder=embedder)) as client:
        by_key = client.post("/search", json={"key": query.name, "k": 5, "colour": 1})
        assert by_key.status_code == 200 and query.name not in [r["key"] for r in by_key.json()["results"]]
        form = client.post(
            "/search", files={"file": (query.name, query.read_bytes(), "image/jpeg")}, data={"colour": "0.5", "k": "5"}
        )
        assert form.status_code == 200, form.text
        assert form.json()["results"][0]["key"] == query.name


@pytest.mark.parametrize("weight", [-1, 1.5, True, "lots"])
def test_a_bad_colour_weight_is_a_422_json_error(embedded_index, embedder, weight):
    with TestClient(create_app(Settings(index=embedded_index), embedder=embedder)) as client:
        answer = client.post("/search", json={"key": "anything.jpg", "colour": weight})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "validation_error" and "colour" in answer.json()["error"]["message"]
