"""The VectorIndex contract: the same calls and the same answers from every backend (embedded and OpenSearch).

Only port methods (plus count/stats) are used, so the suite says what any backend must do. Vectors are
8-dimensional with known cosines to the query `QUERY` (the first axis), so every expected answer is exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from visual_search.core.errors import ModelMismatchError
from visual_search.core.records import ImageRecord, SearchFilters

DIMENSION = 8
QUERY = np.eye(DIMENSION, dtype=np.float32)[0]


def at_cosine(cosine: float, axis: int) -> np.ndarray:
    """The unit vector whose cosine to QUERY is `cosine`, leaning towards `axis` (1..7)."""
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[0] = cosine
    vector[axis] = math.sqrt(1.0 - cosine**2)
    return vector


def record(key: str, label: str | None = None, **attributes: str) -> ImageRecord:
    return ImageRecord(
        key=key,
        uri=f"/catalogue/{key}.jpg",
        content_hash=f"{abs(hash(key)):064x}"[:64],
        width=640,
        height=480,
        label=label,
        attributes=attributes,
        indexed_at=1_700_000_000.5,
    )


# key -> (cosine to QUERY, label, attributes); axes differ so that no two items are identical.
CATALOGUE = {
    "red-shoe": (0.95, "shoes", {"colour": "red", "size": "42"}),
    "blue-shoe": (0.90, "shoes", {"colour": "blue", "size": "42"}),
    "red-bag": (0.80, "bags", {"colour": "red"}),
    "blue-bag": (0.70, "bags", {"colour": "blue"}),
    "green-hat": (0.60, None, {"colour": "green"}),
    "plain-hat": (0.50, None, {}),
}


@pytest.fixture
def catalogue_index(make_index):
    index = make_index()
    keys = list(CATALOGUE)
    vectors = np.stack([at_cosine(CATALOGUE[key][0], axis=1 + i) for i, key in enumerate(keys)])
    index.upsert([record(key, CATALOGUE[key][1], **CATALOGUE[key][2]) for key in keys], vectors)
    return index


def keys_of(hits) -> list[str]:
    return [hit.record.key for hit in hits]


def test_search_returns_k_nearest_by_descending_score(catalogue_index):
    hits = catalogue_index.search(QUERY, 3)
    assert keys_of(hits) == ["red-shoe", "blue-shoe", "red-bag"]
    assert [hit.score for hit in hits] == pytest.approx([0.95, 0.90, 0.80], abs=1e-4)


def test_a_stored_vector_finds_its_own_record_with_score_one(catalogue_index):
    vector = catalogue_index.get_vector("blue-bag")
    top = catalogue_index.search(vector, 1)[0]
    assert top.record.key == "blue-bag"
    assert top.score == pytest.approx(1.0, abs=1e-4)


def test_k_larger_than_the_index_returns_every_record_in_score_order(catalogue_index):
    hits = catalogue_index.search(QUERY, 100)
    assert keys_of(hits) == list(CATALOGUE)  # the catalogue is listed by descending cosine


def test_an_empty_index_counts_zero_and_returns_no_hits(make_index):
    index = make_index()
    assert index.count() == 0
    assert index.search(QUERY, 5) == []
    assert index.get(["anything"]) == {}
    assert index.get_vector("anything") is None


def test_upserting_an_existing_key_replaces_its_record_and_vector(catalogue_index):
    catalogue_index.upsert([record("plain-hat", "hats", colour="white")], at_cosine(0.99, axis=7)[None, :])
    assert catalogue_index.count() == len(CATALOGUE)
    top = catalogue_index.search(QUERY, 1)[0]
    assert (top.record.key, top.record.label, dict(top.record.attributes)) == ("plain-hat", "hats", {"colour": "white"})
    assert top.score == pytest.approx(0.99, abs=1e-4)
    assert keys_of(catalogue_index.search(QUERY, 100)).count("plain-hat") == 1


def test_delete_removes_the_keys_ignores_unknown_ones_and_counts_what_it_removed(catalogue_index):
    removed = catalogue_index.delete(["red-shoe", "no-such-key", "red-bag"])
    assert removed == 2
    assert catalogue_index.count() == len(CATALOGUE) - 2
    assert "red-shoe" not in keys_of(catalogue_index.search(QUERY, 100))
    assert catalogue_index.get(["red-shoe", "red-bag"]) == {}
    assert catalogue_index.get_vector("red-shoe") is None
    assert catalogue_index.delete(["no-such-key"]) == 0


def test_get_returns_existing_keys_with_all_metadata_and_ignores_unknown_ones(catalogue_index):
    found = catalogue_index.get(["red-shoe", "green-hat", "plain-hat", "no-such-key"])
    assert set(found) == {"red-shoe", "green-hat", "plain-hat"}
    assert found["red-shoe"] == record("red-shoe", "shoes", colour="red", size="42")
    assert found["green-hat"].label is None
    assert dict(found["plain-hat"].attributes) == {}


def test_search_hits_carry_the_full_record(catalogue_index):
    hit = catalogue_index.search(QUERY, 1)[0]
    assert hit.record == record("red-shoe", "shoes", colour="red", size="42")


def test_get_vector_returns_the_stored_unit_vector_as_float32(catalogue_index):
    vector = catalogue_index.get_vector("red-bag")
    assert vector.dtype == np.float32 and vector.shape == (DIMENSION,)
    np.testing.assert_allclose(vector, at_cosine(0.80, axis=3), atol=1e-6)


def test_a_label_filter_returns_only_records_with_one_of_those_labels(catalogue_index):
    hits = catalogue_index.search(QUERY, 10, SearchFilters(labels=frozenset({"bags"})))
    assert keys_of(hits) == ["red-bag", "blue-bag"]
    hits = catalogue_index.search(QUERY, 10, SearchFilters(labels=frozenset({"bags", "shoes"})))
    assert keys_of(hits) == ["red-shoe", "blue-shoe", "red-bag", "blue-bag"]


def test_an_attribute_filter_accepts_any_of_the_allowed_values(catalogue_index):
    hits = catalogue_index.search(QUERY, 10, SearchFilters(attributes={"colour": frozenset({"red", "green"})}))
    assert keys_of(hits) == ["red-shoe", "red-bag", "green-hat"]


def test_label_and_attribute_filters_must_all_match(catalogue_index):
    filters = SearchFilters(
        labels=frozenset({"shoes"}), attributes={"colour": frozenset({"blue"}), "size": frozenset({"42"})}
    )
    assert keys_of(catalogue_index.search(QUERY, 10, filters)) == ["blue-shoe"]


def test_a_filter_nothing_matches_returns_no_hits(catalogue_index):
    assert catalogue_index.search(QUERY, 10, SearchFilters(labels=frozenset({"coats"}))) == []
    assert catalogue_index.search(QUERY, 10, SearchFilters(attributes={"material": frozenset({"wool"})})) == []


def test_a_filtered_search_returns_k_hits_when_k_records_match(make_index):
    index = make_index()
    # 40 closer unlabelled records outrank the 5 labelled ones: a backend that filters after a top-k would fail.
    near = [record(f"near-{i}") for i in range(40)]
    far = [record(f"far-{i}", "rare") for i in range(5)]
    vectors = [at_cosine(0.99 - i * 0.001, axis=1 + i % 7) for i in range(40)]
    vectors += [at_cosine(0.10 + i * 0.01, axis=1 + i % 7) for i in range(5)]
    index.upsert(near + far, np.stack(vectors))
    hits = index.search(QUERY, 3, SearchFilters(labels=frozenset({"rare"})))
    assert keys_of(hits) == ["far-4", "far-3", "far-2"]


def test_excluded_keys_are_left_out_and_the_next_best_fill_k(catalogue_index):
    hits = catalogue_index.search(QUERY, 3, exclude_keys=["red-shoe", "no-such-key"])
    assert keys_of(hits) == ["blue-shoe", "red-bag", "blue-bag"]


def test_stats_count_records_per_label_and_name_the_model(catalogue_index):
    stats = catalogue_index.stats()
    assert stats.count == len(CATALOGUE)
    assert dict(stats.labels) == {"shoes": 2, "bags": 2}
    assert (stats.model_id, stats.dimension) == ("test-model", DIMENSION)


def test_count_follows_upserts_and_deletes(make_index):
    index = make_index()
    index.upsert([record("a"), record("b")], np.stack([at_cosine(0.5, 1), at_cosine(0.6, 2)]))
    index.upsert([record("b"), record("c")], np.stack([at_cosine(0.7, 3), at_cosine(0.8, 4)]))
    assert index.count() == 3
    index.delete(["a"])
    assert index.count() == 2


def test_reopening_an_index_with_another_model_id_raises_model_mismatch(make_index):
    make_index(model_id="model-a", name="shared")
    with pytest.raises(ModelMismatchError):
        make_index(model_id="model-b", name="shared")


def test_reopening_an_index_with_another_dimension_raises_model_mismatch(make_index):
    make_index(dimension=DIMENSION, name="shared")
    with pytest.raises(ModelMismatchError):
        make_index(dimension=16, name="shared")


def test_upserting_vectors_of_another_dimension_raises_model_mismatch(make_index):
    index = make_index()
    with pytest.raises(ModelMismatchError):
        index.upsert([record("a")], np.full((1, 16), 0.25, dtype=np.float32))
    assert index.count() == 0
