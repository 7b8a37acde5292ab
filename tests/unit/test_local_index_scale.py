"""The embedded index's large-catalogue storage: the float16 vector file, its crash safety, exact final scores,
and filters that still return k hits at 0.1% and 10% selectivity."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from visual_search.core.records import ImageRecord, SearchFilters
from visual_search.indexes.local.index import LocalIndex
from visual_search.indexes.local.vector_file import VECTOR_FILE_PREFIX, VectorFile, VectorFileError, write_vector_file

pytest.importorskip("faiss")

DIMENSION = 32
COUNT = 20_000
THRESHOLD = 1000


def clustered_unit_vectors(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, DIMENSION))
    vectors = centres[rng.integers(0, 50, count)] + 0.5 * rng.standard_normal((count, DIMENSION))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def label_of(number: int) -> str:
    """0.1% "thousandth", 10% "tenth", the rest "common"."""
    return "thousandth" if number % 1000 == 7 else "tenth" if number % 10 == 3 else "common"


def vector_files(directory) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith(VECTOR_FILE_PREFIX))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered_unit_vectors(COUNT, seed=0)


@pytest.fixture(scope="module")
def built_directory(tmp_path_factory, vectors):
    directory = tmp_path_factory.mktemp("scale") / "index"
    with LocalIndex(directory, model_id="m", dimension=DIMENSION, writable=True, ann_threshold=THRESHOLD) as index:
        for start in range(0, COUNT, 2000):
            index.upsert(
                [
                    ImageRecord(f"item-{i}", f"/p/{i}.jpg", "0" * 64, 1, 1, label_of(i))
                    for i in range(start, start + 2000)
                ],
                vectors[start : start + 2000],
            )
        index.optimize()
    return directory


@pytest.fixture
def directory(tmp_path, built_directory):
    shutil.copytree(built_directory, tmp_path / "index")
    return tmp_path / "index"


def exact_keys(vectors: np.ndarray, query: np.ndarray, k: int, label: str | None = None) -> list[str]:
    numbers = (
        np.arange(len(vectors)) if label is None else np.array([i for i in range(len(vectors)) if label_of(i) == label])
    )
    best = numbers[np.argsort(-(vectors[numbers] @ query), kind="stable")[:k]]
    return [f"item-{i}" for i in best]


def test_the_writer_publishes_one_float16_vector_file_covering_every_row(directory, vectors):
    (name,) = vector_files(directory)
    file = VectorFile(directory / name, DIMENSION)
    try:
        assert file.rows == COUNT
        rows = np.array([0, 123, COUNT - 1])
        assert np.abs(file.read_rows(rows).astype(np.float32) - vectors[rows]).max() < 1e-3
        assert file.read_rows(rows).dtype == np.float16
    finally:
        file.close()


def test_hits_read_from_the_float16_file_are_scored_from_the_float32_vectors(directory, vectors):
    with LocalIndex(directory) as reader:
        hits = reader.search(vectors[42], 10)
    assert hits[0].record.key == "item-42" and hits[0].score == pytest.approx(1.0, abs=1e-6)
    for hit in hits:
        assert hit.score == pytest.approx(float(vectors[int(hit.record.key[5:])] @ vectors[42]), abs=1e-6)


@pytest.mark.parametrize("label", ["thousandth", "tenth"])
def test_a_filter_returns_k_matching_hits_at_0_1_and_10_percent_selectivity(directory, vectors, label):
    queries = clustered_unit_vectors(30, seed=9)
    found = 0
    with LocalIndex(directory) as reader:
        for query in queries:
            hits = reader.search(query, 10, SearchFilters(labels=frozenset({label})))
            assert len(hits) == 10 and {hit.record.label for hit in hits} == {label}
            found += len({hit.record.key for hit in hits} & set(exact_keys(vectors, query, 10, label)))
    assert found / (10 * len(queries)) >= 0.95


def test_a_new_filter_result_is_seen_after_the_next_commit(directory, vectors):
    with LocalIndex(directory, writable=True, ann_threshold=THRESHOLD) as index:
        rare = SearchFilters(labels=frozenset({"thousandth"}))
        assert len(index.search(vectors[0], 100, rare)) == COUNT // 1000
        index.upsert([ImageRecord("new-rare", "/n.jpg", "0" * 64, 1, 1, "thousandth")], vectors[:1])
        hits = index.search(vectors[0], 100, rare)
    assert len(hits) == COUNT // 1000 + 1 and hits[0].record.key in ("new-rare", "item-0")


def test_a_reader_keeps_answering_correctly_when_the_writer_replaces_the_vector_file(directory, vectors):
    reader = LocalIndex(directory)
    writer = LocalIndex(directory, writable=True, ann_threshold=THRESHOLD)
    try:
        assert reader.search(vectors[5], 1)[0].record.key == "item-5"
        old = vector_files(directory)
        writer.delete([f"item-{i}" for i in range(0, COUNT, 3)])  # a third deleted: the next optimize rebuilds
        writer.optimize()
        assert vector_files(directory) != old and len(vector_files(directory)) == 1
        assert reader.search(vectors[7], 1)[0].record.key == "item-7"
        hits = reader.search(vectors[6], 10)  # item-6 itself was deleted
        assert len(hits) == 10 and not any(int(hit.record.key[5:]) % 3 == 0 for hit in hits)
    finally:
        reader.close()
        writer.close()


def test_a_vector_file_left_half_written_by_a_crash_is_removed_by_the_next_writer(directory):
    (name,) = vector_files(directory)
    (directory / f"{VECTOR_FILE_PREFIX}99-1.f16.tmp").write_bytes(b"partial")
    LocalIndex(directory, writable=True, ann_threshold=THRESHOLD).close()
    assert vector_files(directory) == [name]


def test_a_missing_vector_file_is_reported_and_searches_fall_back_to_sqlite(directory, vectors):
    (name,) = vector_files(directory)
    (directory / name).unlink()
    with LocalIndex(directory) as reader:
        assert any("vector file" in problem for problem in reader.check_integrity())
        assert [hit.record.key for hit in reader.search(vectors[7], 10, exact=True)] == exact_keys(
            vectors, vectors[7], 10
        )


def test_a_truncated_vector_file_is_refused(tmp_path):
    seqs, rows = np.arange(1, 11), clustered_unit_vectors(10, seed=3)
    name = write_vector_file(tmp_path, [(seqs, rows)], DIMENSION, tag=10)
    whole = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(whole[:-100])
    with pytest.raises(VectorFileError):
        VectorFile(tmp_path / name, DIMENSION)


def test_a_writer_that_searched_the_mapped_graph_can_still_extend_it(directory, vectors):
    fresh = clustered_unit_vectors(500, seed=11)
    with LocalIndex(directory, writable=True, ann_threshold=THRESHOLD) as writer:
        assert writer.search(vectors[3], 1)[0].record.key == "item-3"  # loads the published graph, read-only
        writer.upsert([ImageRecord(f"fresh-{i}", "/f.jpg", "0" * 64, 1, 1, "common") for i in range(500)], fresh)
        writer.optimize()  # extends the graph: from a copy read afresh, never the read-only one
        assert writer.ann_size == COUNT + 500
        assert writer.search(fresh[17], 1)[0].record.key == "fresh-17"
    with LocalIndex(directory) as reader:
        assert reader.search(fresh[17], 1)[0].record.key == "fresh-17"
        assert reader.ann_size == COUNT + 500
