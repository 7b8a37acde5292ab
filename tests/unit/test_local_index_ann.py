"""The embedded index above its ANN threshold: HNSW sidecar, recall against exact search, tombstones, tail."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from visual_search.core.records import ImageRecord, SearchFilters
from visual_search.indexes.local.hnsw import SIDECAR_PREFIX
from visual_search.indexes.local.index import LocalIndex

pytest.importorskip("faiss")

DIMENSION = 64
COUNT = 3000
THRESHOLD = 500


def clustered_unit_vectors(count: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Unit vectors in tight-ish clusters: like image embeddings, neighbours are meaningful but not trivial."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIMENSION))
    vectors = centres[rng.integers(0, clusters, count)] + 0.6 * rng.standard_normal((count, DIMENSION))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def records(count: int, prefix: str = "item") -> list[ImageRecord]:
    labels = ["common", "common", "common", "uncommon"]
    return [
        ImageRecord(f"{prefix}-{i}", f"/p/{i}.jpg", "0" * 64, 10, 10, "rare" if i % 300 == 0 else labels[i % 4])
        for i in range(count)
    ]


def sidecars(directory) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith(SIDECAR_PREFIX))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered_unit_vectors(COUNT)


@pytest.fixture(scope="module")
def built_directory(tmp_path_factory, vectors):
    """Built once per module (graph building is the slow part); each test works on its own copy."""
    directory = tmp_path_factory.mktemp("built") / "index"
    with LocalIndex(directory, model_id="m", dimension=DIMENSION, writable=True, ann_threshold=THRESHOLD) as index:
        all_records = records(COUNT)
        for start in range(0, COUNT, 100):
            index.upsert(all_records[start : start + 100], vectors[start : start + 100])
        index.optimize()
    return directory


@pytest.fixture
def large_index(tmp_path, built_directory):
    shutil.copytree(built_directory, tmp_path / "index")
    index = LocalIndex(tmp_path / "index", writable=True, ann_threshold=THRESHOLD)
    yield index
    index.close()


def recall_at_10(index: LocalIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    found = 0
    for query in queries:
        exact = {f"item-{i}" for i in np.argsort(-(vectors @ query))[:10]}
        found += len(exact & {hit.record.key for hit in index.search(query, 10)})
    return found / (10 * len(queries))


def test_above_the_threshold_a_reader_searches_the_saved_graph_with_recall_at_10_of_at_least_0_95(large_index, vectors):
    assert len(sidecars(large_index.directory)) == 1
    reader = LocalIndex(large_index.directory)
    queries = clustered_unit_vectors(100, seed=1)
    assert recall_at_10(reader, vectors, queries) >= 0.95
    assert reader.ann_size == COUNT
    reader.close()


def test_upserts_build_the_graph_once_the_index_crosses_the_threshold(tmp_path, vectors):
    with LocalIndex(tmp_path / "i", model_id="m", dimension=DIMENSION, writable=True, ann_threshold=THRESHOLD) as index:
        index.upsert(records(THRESHOLD - 1), vectors[: THRESHOLD - 1])
        assert sidecars(index.directory) == []
        index.upsert(records(THRESHOLD), vectors[:THRESHOLD])
        assert len(sidecars(index.directory)) == 1


def test_rows_added_after_the_graph_was_saved_are_found_by_the_exact_tail(large_index):
    fresh = clustered_unit_vectors(5, seed=2)
    large_index.upsert(records(5, prefix="fresh"), fresh)
    assert large_index.search(fresh[3], 1)[0].record.key == "fresh-3"
    assert large_index.ann_size == COUNT  # still the old graph: the tail was searched exactly


def test_deleted_and_replaced_rows_never_come_back_from_the_graph(large_index, vectors):
    large_index.delete([f"item-{i}" for i in range(50)])
    replacement = clustered_unit_vectors(1, seed=3)
    large_index.upsert([records(COUNT)[60]], replacement)
    for i in range(50):
        assert f"item-{i}" not in {hit.record.key for hit in large_index.search(vectors[i], 10)}
    hits = large_index.search(replacement[0], 10)
    assert hits[0].record.key == "item-60" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [hit.record.key for hit in large_index.search(vectors[60], 10)].count("item-60") <= 1


def test_a_broad_filter_under_the_graph_returns_k_hits_that_all_match(large_index, vectors):
    hits = large_index.search(vectors[7], 20, SearchFilters(labels=frozenset({"uncommon"})))
    assert len(hits) == 20 and {hit.record.label for hit in hits} == {"uncommon"}


def test_a_selective_filter_is_answered_exactly(large_index, vectors):
    rare = [i for i in range(COUNT) if i % 300 == 0]
    query = clustered_unit_vectors(1, seed=4)[0]
    hits = large_index.search(query, 5, SearchFilters(labels=frozenset({"rare"})))
    expected = [f"item-{rare[j]}" for j in np.argsort(-(vectors[rare] @ query))[:5]]
    assert [hit.record.key for hit in hits] == expected


def test_excluding_the_nearest_keys_still_fills_k_from_the_graph(large_index, vectors):
    nearest = [hit.record.key for hit in large_index.search(vectors[9], 30)]
    hits = large_index.search(vectors[9], 10, exclude_keys=nearest[:20])
    assert len(hits) == 10 and not {hit.record.key for hit in hits} & set(nearest[:20])


def test_many_deletions_make_optimize_rebuild_the_graph_without_tombstones(large_index):
    large_index.delete([f"item-{i}" for i in range(0, COUNT, 3)])
    large_index.optimize()
    large_index.search(clustered_unit_vectors(1, seed=5)[0], 1)
    assert large_index.ann_size == large_index.count()


def test_falling_below_the_threshold_removes_the_sidecar(large_index):
    large_index.delete([f"item-{i}" for i in range(COUNT - THRESHOLD // 2)])
    large_index.close()
    assert sidecars(large_index.directory) == []


def test_a_writer_removes_a_sidecar_left_half_written_by_a_crash(large_index):
    directory = large_index.directory
    large_index.close()
    (directory / f"{SIDECAR_PREFIX}99-1.faiss.tmp").write_bytes(b"partial")
    LocalIndex(directory, writable=True, ann_threshold=THRESHOLD).close()
    assert len(sidecars(directory)) == 1 and not sidecars(directory)[0].endswith(".tmp")
