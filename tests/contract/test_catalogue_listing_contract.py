"""The listing part of the VectorIndex contract (browsing and whole-catalogue passes), on both backends."""

from __future__ import annotations

import numpy as np
import pytest

from visual_search.core.records import ImageRecord, SearchFilters

DIMENSION = 8


def record(key: str, label: str | None) -> ImageRecord:
    return ImageRecord(key=key, uri=f"/catalogue/{key}", content_hash="0" * 64, width=10, height=10, label=label)


def unit_vectors(count: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def listed_index(make_index):
    index = make_index(dimension=DIMENSION)
    keys = [f"item-{number:02d}.jpg" for number in range(25)]
    labels = ["Shoes" if number % 3 == 0 else "Hats" if number % 3 == 1 else None for number in range(25)]
    index.upsert([record(key, label) for key, label in zip(keys, labels)], unit_vectors(25))
    return index, keys, labels


def test_pages_follow_key_order_and_report_the_total(listed_index):
    index, keys, _ = listed_index
    first = index.list_records(offset=0, limit=10)
    third = index.list_records(offset=20, limit=10)
    assert [r.key for r in first.records] == sorted(keys)[:10]
    assert [r.key for r in third.records] == sorted(keys)[20:]
    assert first.total == third.total == 25


def test_a_label_filter_pages_only_that_label_and_counts_it(listed_index):
    index, keys, labels = listed_index
    shoes = sorted(key for key, label in zip(keys, labels) if label == "Shoes")
    page = index.list_records(offset=2, limit=3, filters=SearchFilters(labels=frozenset({"Shoes"})))
    assert [r.key for r in page.records] == shoes[2:5]
    assert page.total == len(shoes)
    assert all(r.label == "Shoes" for r in page.records)


def test_a_page_past_the_end_is_empty_but_keeps_the_total(listed_index):
    index, _, _ = listed_index
    page = index.list_records(offset=100, limit=10)
    assert page.records == [] and page.total == 25


def test_bad_paging_is_refused(listed_index):
    index, _, _ = listed_index
    for offset, limit in ((-1, 10), (0, 0), (0, 10_000)):
        with pytest.raises(ValueError):
            index.list_records(offset=offset, limit=limit)


def test_iter_vectors_yields_every_key_once_with_its_stored_vector(listed_index):
    index, keys, _ = listed_index
    index.delete(["item-03.jpg"])
    seen: dict[str, np.ndarray] = {}
    for batch_keys, vectors in index.iter_vectors(batch_size=7):
        assert vectors.shape == (len(batch_keys), DIMENSION) and vectors.dtype == np.float32
        for key, vector in zip(batch_keys, vectors):
            assert key not in seen
            seen[key] = vector
    assert set(seen) == set(keys) - {"item-03.jpg"}
    np.testing.assert_allclose(seen["item-10.jpg"], index.get_vector("item-10.jpg"), atol=1e-6)


def test_an_empty_index_lists_nothing(make_index):
    index = make_index(dimension=DIMENSION)
    assert index.list_records().total == 0
    assert list(index.iter_vectors()) == []


def test_pages_past_ten_thousand_records_keep_the_key_order(make_index):
    """OpenSearch's from/size stops at 10,000 hits; a catalogue page beyond it must still be right."""
    index = make_index(dimension=DIMENSION)
    count = 10_060
    keys = [f"k{number:05d}.jpg" for number in range(count)]
    labels = ["Shoes" if number % 2 else None for number in range(count)]
    for start in range(0, count, 5000):
        index.upsert(
            [record(key, label) for key, label in zip(keys[start : start + 5000], labels[start : start + 5000])],
            unit_vectors(len(keys[start : start + 5000])),
        )
    deep = index.list_records(offset=10_000, limit=50)
    assert [r.key for r in deep.records] == keys[10_000:10_050] and deep.total == count
    shoes = index.list_records(offset=5_020, limit=20, filters=SearchFilters(labels=frozenset({"Shoes"})))
    assert [r.key for r in shoes.records] == [k for k, label in zip(keys, labels) if label][5_020:5_030]
    past_end = index.list_records(offset=20_000, limit=10)
    assert past_end.records == [] and past_end.total == count
