"""OpenSearch specifics of the query-domain centre: a bulk load (backfill) into an index with a centre projects
like an upsert, and documents keep the raw vector beside the projected one only when there is a centre."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from visual_search.core.centre import fit_centre, project
from visual_search.core.records import ImageRecord
from visual_search.indexes.opensearch.index import OpenSearchIndex

DIMENSION = 12


def rows(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, DIMENSION)) + np.eye(DIMENSION)[0] * 3
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def index(opensearch_url):
    created = OpenSearchIndex(f"{opensearch_url}/centre-{uuid.uuid4().hex[:10]}", model_id="m", dimension=DIMENSION)
    yield created
    created.drop()
    created.close()


def sources(index: OpenSearchIndex) -> dict[str, dict]:
    index.refresh()
    answer = index._search({"size": 100, "query": {"match_all": {}}}, "check")
    return {hit["_id"]: hit["_source"] for hit in answer["hits"]["hits"]}


def test_documents_carry_a_raw_vector_only_with_a_centre(index):
    vectors = rows(3, seed=1)
    index.upsert([ImageRecord(f"k{i}", "/p", "h", 1, 1) for i in range(3)], vectors)
    assert all("raw_vector" not in source and "centre_id" not in source for source in sources(index).values())
    centre = fit_centre(rows(20, seed=2), 0)
    assert index.set_centre(centre) == 3
    for key, source in sources(index).items():
        number = int(key[1:])
        assert source["centre_id"] == centre.centre_id
        np.testing.assert_allclose(source["vector"], project(vectors[number], centre, 0), atol=1e-6)
    index.set_centre(None)
    assert all("raw_vector" not in source and "centre_id" not in source for source in sources(index).values())


def test_a_bulk_load_into_a_centred_index_projects_like_an_upsert(index):
    centre = fit_centre(rows(20, seed=3), 0)
    index.set_centre(centre)
    vectors = rows(40, seed=4)
    batches = [
        ([ImageRecord(f"k{i}", "/p", "h", 1, 1) for i in range(s, s + 20)], vectors[s : s + 20]) for s in (0, 20)
    ]
    assert index.bulk_load(batches) == 40
    stored = sources(index)
    assert len(stored) == 40
    for key, source in stored.items():
        number = int(key[1:])
        np.testing.assert_allclose(source["vector"], project(vectors[number], centre, 0), atol=1e-6)
        np.testing.assert_allclose(index.get_vector(key), vectors[number], atol=1e-7)
    hit = index.search(vectors[7], 1)[0]
    assert hit.record.key == "k7" and hit.score == pytest.approx(1.0, abs=1e-5)
