"""OpenSearchIndex against a real node (scripts/opensearch.sh start): mapping, model checks, writes, filtered k-NN."""

from __future__ import annotations

import json
import urllib.request
import uuid

import numpy as np
import pytest

from visual_search.core.errors import ModelMismatchError, NotFoundError
from visual_search.core.records import ImageRecord, SearchFilters
from visual_search.indexes.opensearch.index import OpenSearchIndex

pytestmark = pytest.mark.opensearch


def unit_rows(rng: np.random.Generator, rows: int, dimension: int) -> np.ndarray:
    vectors = rng.normal(size=(rows, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def record(key: str, label: str | None = None, **attributes: str) -> ImageRecord:
    return ImageRecord(
        key=key,
        uri=f"/catalogue/{key}",
        content_hash="0" * 64,
        width=640,
        height=480,
        label=label,
        attributes=attributes,
        indexed_at=1_700_000_000.5,
    )


def node_json(base_url: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def index_url(opensearch_url):
    name = f"it-{uuid.uuid4().hex[:10]}"
    yield f"{opensearch_url}/{name}"
    urllib.request.urlopen(urllib.request.Request(f"{opensearch_url}/{name}?ignore_unavailable=true", method="DELETE"))


def test_new_index_maps_a_cosine_hnsw_vector_of_the_embedder_dimension(opensearch_url, index_url):
    OpenSearchIndex(index_url, model_id="lite2:abc", dimension=12, m=8, ef_construction=64).close()
    name = index_url.rsplit("/", 1)[1]
    mappings = node_json(opensearch_url, f"/{name}/_mapping")[name]["mappings"]
    settings = node_json(opensearch_url, f"/{name}/_settings")[name]["settings"]["index"]
    vector = mappings["properties"]["vector"]
    assert vector["type"] == "knn_vector" and vector["dimension"] == 12
    assert vector["method"]["engine"] == "lucene"
    assert vector["method"]["space_type"] == "cosinesimil"
    assert vector["method"]["parameters"] == {"m": 8, "ef_construction": 64}
    assert settings["knn"] == "true"
    assert mappings["_meta"]["model_id"] == "lite2:abc" and mappings["_meta"]["dimension"] == 12
    assert {mappings["properties"][name]["type"] for name in ("key", "label", "content_hash", "model_id")} == {
        "keyword"
    }
    assert mappings["properties"]["width"]["type"] == "integer"


def test_opening_with_another_model_or_dimension_is_refused(index_url):
    OpenSearchIndex(index_url, model_id="model-a", dimension=8).close()
    with pytest.raises(ModelMismatchError, match="model-a"):
        OpenSearchIndex(index_url, model_id="model-b", dimension=8)
    with pytest.raises(ModelMismatchError, match="dimension 8"):
        OpenSearchIndex(index_url, model_id="model-a", dimension=16)


def test_an_index_not_made_by_this_library_is_refused(opensearch_url, index_url):
    node_json(opensearch_url, "/" + index_url.rsplit("/", 1)[1], method="PUT", body={})
    with pytest.raises(ModelMismatchError, match="not created by visual-search"):
        OpenSearchIndex(index_url, model_id="model-a", dimension=8)


def test_open_existing_reads_model_and_dimension_from_the_mapping(index_url):
    OpenSearchIndex(index_url, model_id="lite2:abc", dimension=8).close()
    reopened = OpenSearchIndex.open_existing(index_url)
    assert (reopened.model_id, reopened.dimension, reopened.engine) == ("lite2:abc", 8, "lucene")


def test_without_a_model_the_constructor_opens_the_existing_index_read_mostly(index_url):
    rng = np.random.default_rng(6)
    vectors = unit_rows(rng, 3, 8)
    OpenSearchIndex(index_url, model_id="lite2:abc", dimension=8).upsert(
        [record("a"), record("b"), record("c")], vectors
    )
    reader = OpenSearchIndex(index_url, model_id=None, dimension=None)
    assert (reader.model_id, reader.dimension) == ("lite2:abc", 8)
    assert reader.search(reader.get_vector("b"), k=1)[0].record.key == "b"
    with pytest.raises(ModelMismatchError):
        OpenSearchIndex(index_url, model_id="other-model", dimension=None)


def test_open_existing_of_a_missing_index_raises_not_found(index_url):
    with pytest.raises(NotFoundError):
        OpenSearchIndex.open_existing(index_url)
    with pytest.raises(NotFoundError):
        OpenSearchIndex(index_url, model_id=None, dimension=None)


def test_upserting_the_same_keys_twice_replaces_rather_than_duplicates(index_url):
    rng = np.random.default_rng(1)
    index = OpenSearchIndex(index_url, model_id="m", dimension=8)
    keys = [f"shirts/{number}.jpg" for number in range(40)]
    index.upsert([record(key, "old") for key in keys], unit_rows(rng, 40, 8))
    index.upsert([record(key, "new") for key in keys], unit_rows(rng, 40, 8))
    assert index.count() == 40
    assert index.stats().labels == {"new": 40}
    assert {found.label for found in index.get(keys[:5] + ["missing.jpg"]).values()} == {"new"}


def test_scores_are_the_cosine_similarity_of_the_stored_vectors(index_url):
    rng = np.random.default_rng(2)
    vectors = unit_rows(rng, 30, 16)
    index = OpenSearchIndex(index_url, model_id="m", dimension=16)
    index.upsert([record(f"k{number}") for number in range(30)], vectors)
    hits = index.search(vectors[3], k=5)
    expected = vectors @ vectors[3]
    assert hits[0].record.key == "k3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [hit.record.key for hit in hits] == [f"k{number}" for number in np.argsort(-expected)[:5]]
    for hit in hits:
        assert hit.score == pytest.approx(expected[int(hit.record.key[1:])], abs=1e-4)
    np.testing.assert_allclose(index.get_vector("k7"), vectors[7], atol=1e-7)


def test_a_selective_label_filter_still_returns_k_hits(index_url):
    """Filtering inside the k-NN clause: a post-filter would find no 'rare' item among the 10 nearest."""
    rng = np.random.default_rng(3)
    common_centre = unit_rows(rng, 1, 32)[0]
    common = unit_rows(rng, 400, 32) * 0.15 + common_centre
    rare = unit_rows(rng, 12, 32)
    vectors = np.vstack([common, rare])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = [record(f"c{n}", "common", colour="red") for n in range(400)]
    records += [record(f"r{n}", "rare", colour="blue" if n < 4 else "red") for n in range(12)]
    index = OpenSearchIndex(index_url, model_id="m", dimension=32)
    index.upsert(records, vectors)

    unfiltered = index.search(common_centre, k=10)
    assert all(hit.record.label == "common" for hit in unfiltered)
    filtered = index.search(common_centre, k=10, filters=SearchFilters(labels=frozenset({"rare"})))
    assert len(filtered) == 10 and all(hit.record.label == "rare" for hit in filtered)
    assert [hit.score for hit in filtered] == sorted((hit.score for hit in filtered), reverse=True)

    by_attribute = index.search(common_centre, k=10, filters=SearchFilters(attributes={"colour": frozenset({"blue"})}))
    assert sorted(hit.record.key for hit in by_attribute) == ["r0", "r1", "r2", "r3"]
    excluded = index.search(
        common_centre, k=20, filters=SearchFilters(labels=frozenset({"rare"})), exclude_keys=["r0", "r5"]
    )
    assert len(excluded) == 10 and not {"r0", "r5"} & {hit.record.key for hit in excluded}


def test_k_beyond_the_index_returns_everything_and_an_empty_index_returns_nothing(index_url):
    rng = np.random.default_rng(4)
    index = OpenSearchIndex(index_url, model_id="m", dimension=8)
    assert index.search(unit_rows(rng, 1, 8)[0], k=5) == []
    index.upsert([record(f"k{n}") for n in range(7)], unit_rows(rng, 7, 8))
    assert len(index.search(unit_rows(rng, 1, 8)[0], k=50)) == 7


def test_delete_counts_only_keys_that_existed_and_writes_are_visible_at_once(index_url):
    rng = np.random.default_rng(5)
    index = OpenSearchIndex(index_url, model_id="m", dimension=8)
    vectors = unit_rows(rng, 3, 8)
    index.upsert([record("a"), record("b"), record("c")], vectors)
    assert index.search(vectors[1], k=1)[0].record.key == "b"
    assert index.delete(["b", "never-indexed"]) == 1
    assert index.count() == 2 and index.get_vector("b") is None
    assert index.search(vectors[1], k=1)[0].record.key != "b"


def test_vectors_of_the_wrong_dimension_are_refused(index_url):
    index = OpenSearchIndex(index_url, model_id="m", dimension=8)
    with pytest.raises(ModelMismatchError):
        index.upsert([record("a")], np.ones((1, 9), dtype=np.float32))
    with pytest.raises(ModelMismatchError):
        index.search(np.ones(4, dtype=np.float32), k=3)


def test_drop_is_idempotent_and_works_after_close(index_url):
    index = OpenSearchIndex(index_url, model_id="m", dimension=8)
    index.close()
    index.drop()
    index.drop()
    with pytest.raises(NotFoundError):
        OpenSearchIndex.open_existing(index_url)
