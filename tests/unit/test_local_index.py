"""Embedded-index behaviour beyond the contract: persistence, readers, refresh, validation, integrity."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from visual_search.core.errors import (
    IndexClosedError,
    IndexCorruptError,
    IndexLockedError,
    InvalidRequestError,
    ModelMismatchError,
    NotFoundError,
)
from visual_search.core.records import ImageRecord, SearchFilters
from visual_search.indexes.local.database import DATABASE_FILE_NAME
from visual_search.indexes.local.index import LocalIndex

DIMENSION = 16


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def records(count: int, prefix: str = "item", label: str | None = None) -> list[ImageRecord]:
    return [
        ImageRecord(f"{prefix}-{i}", f"/photos/{prefix}-{i}.jpg", f"{i:064x}", 100, 80, label) for i in range(count)
    ]


@pytest.fixture
def writer(tmp_path):
    index = LocalIndex(tmp_path / "index", model_id="model-a", dimension=DIMENSION, writable=True)
    yield index
    index.close()


def test_records_and_vectors_survive_closing_and_reopening(tmp_path):
    vectors = unit_vectors(50)
    with LocalIndex(tmp_path / "index", model_id="model-a", dimension=DIMENSION, writable=True) as index:
        index.upsert(records(50), vectors)
        index.delete(["item-7"])
    with LocalIndex(tmp_path / "index", model_id="model-a", dimension=DIMENSION, writable=True) as index:
        assert index.count() == 49
        assert index.get(["item-7"]) == {}
        np.testing.assert_allclose(index.get_vector("item-3"), vectors[3], atol=1e-6)
        assert index.search(vectors[3], 1)[0].record.key == "item-3"


def test_a_reader_learns_model_and_dimension_from_disk(writer):
    writer.upsert(records(3), unit_vectors(3))
    reader = LocalIndex(writer.directory)
    assert (reader.model_id, reader.dimension, reader.count()) == ("model-a", DIMENSION, 3)
    assert reader.stats().backend == "embedded"
    reader.close()


def test_a_reader_naming_another_model_is_refused_with_both_models_in_the_message(writer):
    with pytest.raises(ModelMismatchError, match="model-a.*model-b"):
        LocalIndex(writer.directory, model_id="model-b")


def test_opening_a_missing_index_for_reading_raises_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="no index"):
        LocalIndex(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_creating_an_index_needs_the_model_and_dimension(tmp_path):
    with pytest.raises(InvalidRequestError, match="model_id"):
        LocalIndex(tmp_path / "index", writable=True)


def test_a_second_writer_in_the_same_process_is_refused(writer):
    with pytest.raises(IndexLockedError, match=str(writer.directory)):
        LocalIndex(writer.directory, model_id="model-a", dimension=DIMENSION, writable=True)


def test_the_writer_lock_is_released_on_close(writer):
    writer.close()
    LocalIndex(writer.directory, model_id="model-a", dimension=DIMENSION, writable=True).close()


def test_a_reader_sees_each_commit_of_the_writer_at_its_next_search(writer):
    vectors = unit_vectors(30)
    writer.upsert(records(20), vectors[:20])
    reader = LocalIndex(writer.directory)
    assert len(reader.search(vectors[0], 100)) == 20
    writer.upsert(records(10, prefix="new"), vectors[20:])
    writer.delete(["item-0"])
    writer.upsert([records(2)[1]], vectors[25:26])  # replace item-1 by new-5's vector
    keys = [hit.record.key for hit in reader.search(vectors[25], 100)]
    assert len(keys) == 29 and "item-0" not in keys
    assert set(keys[:2]) == {"new-5", "item-1"}
    reader.close()


def test_a_reader_far_behind_a_trimmed_change_log_reloads_everything(writer, monkeypatch):
    import visual_search.indexes.local.database as store

    monkeypatch.setattr(store, "_REMOVAL_LOG_LIMIT", 10)
    monkeypatch.setattr(store, "_REMOVAL_LOG_KEPT", 2)
    vectors = unit_vectors(40)
    writer.upsert(records(40), vectors)
    reader = LocalIndex(writer.directory)
    assert len(reader.search(vectors[0], 100)) == 40
    for key in [f"item-{i}" for i in range(30)]:
        writer.delete([key])
    hits = reader.search(vectors[35], 100)
    assert sorted(hit.record.key for hit in hits) == sorted(f"item-{i}" for i in range(30, 40))
    reader.close()


def test_a_read_only_index_refuses_writes(writer):
    reader = LocalIndex(writer.directory)
    with pytest.raises(PermissionError, match="read-only"):
        reader.upsert(records(1), unit_vectors(1))
    with pytest.raises(PermissionError):
        reader.delete(["item-0"])
    reader.close()


@pytest.mark.parametrize(
    "vectors, message",
    [
        (np.ones((1, DIMENSION), dtype=np.int32), "floating point"),
        (np.ones(DIMENSION, dtype=np.float32), "2-D"),
        (np.full((1, DIMENSION), np.nan, dtype=np.float32), "NaN"),
        (np.full((1, DIMENSION), 1.0, dtype=np.float32), "unit length"),
        (np.eye(DIMENSION, dtype=np.float32)[:2], "pair up"),
    ],
)
def test_upsert_rejects_malformed_vectors_with_a_message(writer, vectors, message):
    with pytest.raises(InvalidRequestError, match=message):
        writer.upsert(records(1), vectors)
    assert writer.count() == 0


def test_nearly_unit_vectors_are_accepted_and_stored_exactly_unit(writer):
    writer.upsert(records(1), unit_vectors(1) * np.float32(1.0005))
    assert np.linalg.norm(writer.get_vector("item-0")) == pytest.approx(1.0, abs=1e-6)


def test_one_upsert_may_not_name_a_key_twice(writer):
    with pytest.raises(InvalidRequestError, match="twice"):
        writer.upsert(records(1) * 2, unit_vectors(2))


def test_search_rejects_a_bad_query_or_k(writer):
    writer.upsert(records(3), unit_vectors(3))
    with pytest.raises(ModelMismatchError):
        writer.search(unit_vectors(1)[0][:8], 1)
    with pytest.raises(InvalidRequestError, match="k must"):
        writer.search(unit_vectors(1)[0], 0)
    with pytest.raises(InvalidRequestError, match="NaN"):
        writer.search(np.full(DIMENSION, np.nan, dtype=np.float32), 1)


def test_a_query_of_shape_one_by_dimension_is_accepted(writer):
    vectors = unit_vectors(3)
    writer.upsert(records(3), vectors)
    assert writer.search(vectors[2:3], 1)[0].record.key == "item-2"


def test_every_record_keeps_its_content_hash(writer):
    writer.upsert(records(3), unit_vectors(3))
    stored = writer.get([f"item-{i}" for i in range(3)])
    assert {key: record.content_hash for key, record in stored.items()} == {f"item-{i}": f"{i:064x}" for i in range(3)}


def test_search_filters_and_exclusions_combine(writer):
    vectors = unit_vectors(60)
    writer.upsert(records(30, prefix="a", label="shoes") + records(30, prefix="b", label="bags"), vectors)
    filters = SearchFilters(labels=frozenset({"bags"}))
    hits = writer.search(vectors[40], 5, filters, exclude_keys=["b-10"])
    assert len(hits) == 5 and all(hit.record.label == "bags" for hit in hits)
    assert "b-10" not in [hit.record.key for hit in hits]
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_a_healthy_index_has_no_integrity_problems(writer):
    writer.upsert(records(10), unit_vectors(10))
    assert writer.check_integrity() == []


def test_integrity_check_reports_a_record_whose_vector_is_missing(writer):
    writer.upsert(records(10), unit_vectors(10))
    with sqlite3.connect(writer.directory / DATABASE_FILE_NAME) as tamper:
        tamper.execute("DELETE FROM vectors WHERE seq = 3")
    assert any("without a vector" in problem for problem in writer.check_integrity())


def test_a_file_that_is_not_an_index_raises_index_corrupt(tmp_path):
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / DATABASE_FILE_NAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(IndexCorruptError):
        LocalIndex(tmp_path / "index")


def test_a_closed_index_says_so(writer):
    writer.close()
    with pytest.raises(IndexClosedError, match="closed"):
        writer.count()


def test_threads_can_search_while_another_thread_upserts(writer):
    vectors = unit_vectors(400)
    all_records = records(400)
    writer.upsert(all_records[:10], vectors[:10])
    failures: list[BaseException] = []

    def search_repeatedly() -> None:
        try:
            for i in range(40):
                hits = writer.search(vectors[i % 10], 5)
                assert len(hits) == 5 and hits[0].record.key == f"item-{i % 10}"
        except BaseException as failure:  # collected: an exception in a thread would not fail the test
            failures.append(failure)

    threads = [threading.Thread(target=search_repeatedly) for _ in range(3)]
    for thread in threads:
        thread.start()
    for start in range(10, 400, 30):
        writer.upsert(all_records[start : start + 30], vectors[start : start + 30])
    for thread in threads:
        thread.join()
    assert failures == []
    assert writer.count() == 400
