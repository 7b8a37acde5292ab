"""The query-domain centre as part of an index (issue 20), on both backends: stored with the index, applied to
stored vectors and queries alike, re-projected from the raw vectors, and exactly today's results without one."""

from __future__ import annotations

import numpy as np
import pytest

from visual_search.core.centre import Centre, centred_space_id, fit_centre, project
from visual_search.core.colour import COLOUR_DIMENSION, colour_model_id, signatures
from visual_search.core.errors import ModelMismatchError
from visual_search.core.records import ImageRecord

APPEARANCE = 24
MODEL = colour_model_id("centre-test-model")
DIMENSION = APPEARANCE + COLOUR_DIMENSION


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def catalogue(count: int, seed: int = 3) -> np.ndarray:
    """Signatures whose appearance parts share a strong common component (the "domain" a centre removes)."""
    rng = np.random.default_rng(seed)
    shared = np.zeros(APPEARANCE)
    shared[0] = 3.0
    appearance = unit(rng.normal(size=(count, APPEARANCE)) + shared)
    colours = unit(np.abs(rng.normal(size=(count, COLOUR_DIMENSION))))
    return signatures(appearance, colours)


def records(count: int) -> list[ImageRecord]:
    return [ImageRecord(f"item-{i:03d}", f"/photos/{i}.jpg", f"hash{i}", 10, 10, "things") for i in range(count)]


def shopper_centre(seed: int = 9) -> Centre:
    return fit_centre(catalogue(40, seed=seed), COLOUR_DIMENSION)


def ranking(index, query: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
    return [(hit.record.key, hit.score) for hit in index.search(query, k)]


def reference(vectors: np.ndarray, query: np.ndarray, centre: Centre | None, k: int = 10) -> list[str]:
    stored = project(vectors, centre, COLOUR_DIMENSION)
    scores = stored @ project(query, centre, COLOUR_DIMENSION)
    return [f"item-{i:03d}" for i in np.lexsort((np.arange(len(scores)), -scores))[:k]]


@pytest.fixture
def filled(make_index):
    vectors = catalogue(60)
    index = make_index(model_id=MODEL, dimension=DIMENSION)
    index.upsert(records(60), vectors)
    return index, vectors


def test_without_a_centre_results_are_exactly_those_of_an_index_that_never_had_one(make_index, filled):
    index, vectors = filled
    queries = catalogue(5, seed=11)
    before = [ranking(index, query) for query in queries]
    assert index.centre is None and index.space_id == MODEL
    index.set_centre(shopper_centre())
    index.set_centre(None)
    assert [ranking(index, query) for query in queries] == before  # keys and scores, bit for bit
    np.testing.assert_allclose(index.get_vector("item-007"), vectors[7], atol=1e-6)  # OpenSearch: 7 decimals


def test_a_centre_ranks_stored_vectors_and_queries_both_projected(filled):
    index, vectors = filled
    centre = shopper_centre()
    index.set_centre(centre)
    changed = 0
    for query in catalogue(8, seed=12):
        keys = [key for key, _ in ranking(index, query)]
        assert keys == reference(vectors, query, centre)
        changed += keys != reference(vectors, query, None)
    assert changed, "the centre must change some rankings, or this test proves nothing"
    hit = index.search(vectors[5], 1)[0]
    assert (hit.record.key, hit.score) == ("item-005", pytest.approx(1.0, abs=1e-5))


def test_the_centre_moves_only_the_appearance_part_of_a_signature():
    vectors = catalogue(4)
    moved = project(vectors, shopper_centre(), COLOUR_DIMENSION)
    np.testing.assert_array_equal(moved[:, APPEARANCE:], vectors[:, APPEARANCE:])
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-6)
    assert not np.allclose(moved[:, :APPEARANCE], vectors[:, :APPEARANCE])


def test_raw_vectors_are_kept_so_a_new_centre_reprojects_without_re_embedding(filled):
    index, vectors = filled
    index.set_centre(shopper_centre(seed=1))
    second = shopper_centre(seed=2)
    index.set_centre(second)
    assert index.count() == 60
    np.testing.assert_allclose(index.get_vector("item-042"), vectors[42], atol=1e-7)
    keys, found = [], []
    for batch_keys, batch in index.iter_vectors(batch_size=25):
        keys += batch_keys
        found.append(batch)
    np.testing.assert_allclose(np.concatenate(found), vectors[[int(key[5:]) for key in keys]], atol=1e-7)
    query = catalogue(1, seed=13)[0]
    assert [key for key, _ in ranking(index, query)] == reference(vectors, query, second)


def test_records_written_after_a_refit_are_projected_with_the_new_centre(filled):
    index, vectors = filled
    centre = shopper_centre()
    index.set_centre(centre)
    extra = catalogue(10, seed=21)
    index.upsert([ImageRecord(f"item-{60 + i:03d}", "/p", "h", 1, 1) for i in range(10)], extra)
    everything = np.concatenate([vectors, extra])
    query = catalogue(1, seed=22)[0]
    assert [key for key, _ in ranking(index, query, 15)] == reference(everything, query, centre, 15)


def test_the_centre_is_stored_with_the_index_and_its_hash_is_part_of_the_space_id(make_index, filled):
    index, _ = filled
    centre = shopper_centre()
    index.set_centre(centre)
    assert index.space_id == centred_space_id(MODEL, centre) == f"{MODEL}+centre-{centre.centre_id}"
    assert index.stats().centre == {"centre_id": centre.centre_id, "photos": 40}
    index.close()
    reopened = make_index(model_id=centred_space_id(MODEL, centre), dimension=DIMENSION)
    assert reopened.centre == centre
    reopened.close()
    with pytest.raises(ModelMismatchError, match="centre"):
        make_index(model_id=centred_space_id(MODEL, shopper_centre(seed=4)), dimension=DIMENSION)


def test_a_centre_of_another_model_is_refused_before_anything_changes(filled):
    index, _ = filled
    with pytest.raises(ModelMismatchError):
        index.set_centre(Centre(np.ones(APPEARANCE + 1, np.float32) / 5, 3))
    assert index.centre is None
