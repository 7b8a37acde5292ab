"""Any sequence of upserts and deletes leaves the embedded index answering exactly like a dict and brute force."""

from __future__ import annotations

import tempfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from visual_search.core.records import ImageRecord, SearchFilters
from visual_search.indexes.local.index import LocalIndex

DIMENSION = 8
KEYS = [f"k{i}" for i in range(12)]

upserts = st.tuples(
    st.just("upsert"), st.lists(st.sampled_from(KEYS), min_size=1, max_size=6, unique=True), st.integers(0, 2**32 - 1)
)
deletes = st.tuples(st.just("delete"), st.lists(st.sampled_from(KEYS + ["unknown"]), max_size=4), st.just(0))


def unit_vector(*seed: int) -> np.ndarray:
    """Distinct seeds give distinct vectors, so exact score ties (whose order is arbitrary) never occur."""
    vector = np.random.default_rng(list(seed)).standard_normal(DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


def expected_keys(model: dict[str, tuple[np.ndarray, str]], query: np.ndarray, k: int, label: str | None) -> list[str]:
    candidates = [(key, vector) for key, (vector, record_label) in model.items() if label in (None, record_label)]
    ranked = sorted(candidates, key=lambda item: -float(item[1] @ query))
    return [key for key, _ in ranked[:k]]


@settings(max_examples=25, deadline=None)
@given(
    operations=st.lists(st.one_of(upserts, deletes), min_size=1, max_size=10),
    ann_threshold=st.sampled_from([5, 10**9]),
    k=st.integers(1, 14),
    query_seed=st.integers(0, 2**32 - 1),
)
def test_after_any_writes_writer_and_reader_agree_with_a_dict_and_brute_force(operations, ann_threshold, k, query_seed):
    query = unit_vector(query_seed, 99)
    model: dict[str, tuple[np.ndarray, str]] = {}
    with tempfile.TemporaryDirectory() as directory:
        writer = LocalIndex(directory, model_id="m", dimension=DIMENSION, writable=True, ann_threshold=ann_threshold)
        writer.upsert([ImageRecord("seed", "/s", "0" * 64, 1, 1, "even")], unit_vector(0, 0)[None, :])
        model["seed"] = (unit_vector(0, 0), "even")
        reader = LocalIndex(directory, ann_threshold=ann_threshold)
        for kind, keys, seed in operations:
            if kind == "upsert":
                vectors = np.stack([unit_vector(seed, 1 + KEYS.index(key)) for key in keys])
                labels = ["even" if seed % 2 == 0 else "odd" for _ in keys]
                writer.upsert(
                    [ImageRecord(key, "/x", "0" * 64, 1, 1, label) for key, label in zip(keys, labels)], vectors
                )
                model.update({key: (vector, label) for key, vector, label in zip(keys, vectors, labels)})
            else:
                assert writer.delete(keys) == len(set(keys) & set(model))
                for key in keys:
                    model.pop(key, None)
            # the reader refreshes incrementally after every commit
            assert [hit.record.key for hit in reader.search(query, k)] == expected_keys(model, query, k, None)
        for index in (writer, reader):
            assert index.count() == len(model)
            assert [hit.record.key for hit in index.search(query, k)] == expected_keys(model, query, k, None)
            odd = SearchFilters(labels=frozenset({"odd"}))
            assert [hit.record.key for hit in index.search(query, k, odd)] == expected_keys(model, query, k, "odd")
            assert index.stats().labels == {
                label: count
                for label in ("even", "odd")
                if (count := sum(1 for _, record_label in model.values() if record_label == label))
            }
        reader.close()
        writer.close()
        assert LocalIndex(directory).check_integrity() == []
