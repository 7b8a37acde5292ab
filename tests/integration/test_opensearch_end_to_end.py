"""The demo catalogue indexed into a real OpenSearch node through the CLI agrees with the embedded index: its
top-10 matches exact search, and the local server answers a photo query with the same top result."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from fakes import indexed_keys
from fastapi.testclient import TestClient

from visual_search.bootstrap import build_embedder
from visual_search.cli.main import main
from visual_search.core.errors import InvalidSettingError
from visual_search.core.settings import Settings
from visual_search.indexes.local.index import LocalIndex
from visual_search.indexes.opensearch.index import OpenSearchIndex
from visual_search.server.app import create_app

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "catalogue"
QUERIES = ["e3348ff1.jpg", "22d0ec9a.jpg", "986d3a7e.jpg"]  # a blazer, shoes, a dress from the demo catalogue


@pytest.fixture(scope="module")
def indexes(opensearch_url, tmp_path_factory):
    opensearch_index_url = f"{opensearch_url}/e2e-demo-{uuid.uuid4().hex[:8]}"
    embedded_dir = tmp_path_factory.mktemp("embedded")
    for target in (opensearch_index_url, str(embedded_dir)):
        command = ["index", str(DEMO / "images"), "--labels", str(DEMO / "labels.csv"), "--index", target, "--quiet"]
        assert main(command) == 0
    yield opensearch_index_url, embedded_dir
    OpenSearchIndex(opensearch_index_url, model_id=None, dimension=None).drop()


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(Settings())


def test_opensearch_top_10_agrees_with_exact_search_on_the_demo_catalogue(indexes):
    opensearch_index_url, embedded_dir = indexes
    with LocalIndex(embedded_dir, writable=False) as exact:
        opensearch = OpenSearchIndex(opensearch_index_url, model_id=exact.model_id, dimension=exact.dimension)
        assert opensearch.count() == exact.count() == len(list((DEMO / "images").glob("*.jpg")))
        keys = indexed_keys(exact)[::3]  # about 100 queries across the catalogue
        recalls = []
        for key in keys:
            vector = exact.get_vector(key)
            truth = {hit.record.key for hit in exact.search(vector, 10, exact=True)}
            found = {hit.record.key for hit in opensearch.search(vector, 10)}
            recalls.append(len(truth & found) / len(truth))
        opensearch.close()
    assert np.mean(recalls) >= 0.98, f"recall@10 {np.mean(recalls):.3f} over {len(keys)} queries"


def test_the_local_server_over_opensearch_gives_the_embedded_indexes_top_result(indexes, embedder):
    opensearch_index_url, embedded_dir = indexes
    answers = {}
    for name, index in (("opensearch", opensearch_index_url), ("embedded", str(embedded_dir))):
        with TestClient(create_app(Settings(index=index), embedder=embedder)) as client:
            answers[name] = [
                client.post("/search", files={"file": (q, (DEMO / "images" / q).read_bytes(), "image/jpeg")}).json()
                for q in QUERIES
            ]
    for query, over_opensearch, embedded in zip(QUERIES, answers["opensearch"], answers["embedded"]):
        assert over_opensearch["results"][0]["key"] == embedded["results"][0]["key"] == query
        assert over_opensearch["results"][0]["score"] == pytest.approx(embedded["results"][0]["score"], abs=1e-3)
        assert over_opensearch["results"][0]["label"] == embedded["results"][0]["label"]


def test_hnsw_settings_ride_in_the_index_url(opensearch_url, embedder):
    from visual_search.bootstrap import open_index

    url = f"{opensearch_url}/hnsw-options-{uuid.uuid4().hex[:8]}"
    index = open_index(Settings(index=f"{url}?m=8&ef_construction=64&ef_search=40"), writable=True, embedder=embedder)
    try:
        assert index.ef_search == 40
        import httpx

        method = httpx.get(f"{url}/_mapping").json()
        method = next(iter(method.values()))["mappings"]["properties"]
        vector_field = next(field for field in method.values() if field.get("type") == "knn_vector")
        assert vector_field["method"]["parameters"] == {"m": 8, "ef_construction": 64}
    finally:
        index.drop()
    with pytest.raises(InvalidSettingError, match="unknown OpenSearch option"):
        open_index(Settings(index=f"{url}?shards=3"), writable=True, embedder=embedder)
