"""find_duplicates on vectors with known cosines: chains join, the threshold cuts, singletons stay out."""

from __future__ import annotations

import numpy as np
import pytest

from visual_search.core.errors import InvalidRequestError
from visual_search.core.records import ImageRecord
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.duplicates import find_duplicates

DIMENSION = 16


def near(base: np.ndarray, cosine: float, axis: int) -> np.ndarray:
    """A unit vector at `cosine` to unit `base`, turned towards basis axis `axis` (orthogonal to base)."""
    other = np.zeros(DIMENSION, dtype=np.float32)
    other[axis] = 1.0
    return (cosine * base + np.sqrt(1 - cosine**2) * other).astype(np.float32)


@pytest.fixture
def index(tmp_path):
    index = LocalIndex(tmp_path / "index", model_id="m", dimension=DIMENSION, writable=True)
    e = np.eye(DIMENSION, dtype=np.float32)
    vectors = {
        "a.jpg": e[0],
        "a-copy.jpg": near(e[0], 0.99, 10),
        "a-copy-of-copy.jpg": near(near(e[0], 0.99, 10), 0.99, 11),
        "b.jpg": e[1],
        "b-resized.jpg": near(e[1], 0.97, 12),
        "c.jpg": e[2],
        "c-alike.jpg": near(e[2], 0.90, 13),  # similar, not a duplicate at 0.95
        "d.jpg": e[3],
    }
    records = [ImageRecord(key, f"/x/{key}", "0" * 64, 1, 1) for key in vectors]
    index.upsert(records, np.stack(list(vectors.values())))
    yield index
    index.close()


def test_groups_are_joined_through_chains_and_cut_by_the_threshold(index):
    report = find_duplicates(index, threshold=0.95)
    assert report.images_scanned == 8
    assert [sorted(group.keys) for group in report.groups] == [
        ["a-copy-of-copy.jpg", "a-copy.jpg", "a.jpg"],
        ["b-resized.jpg", "b.jpg"],
    ]
    assert all(member.score >= 0.95 for group in report.groups for member in group.members)


def test_a_lower_threshold_admits_merely_similar_pairs_and_a_higher_one_splits(index):
    assert ["c-alike.jpg", "c.jpg"] in [sorted(g.keys) for g in find_duplicates(index, threshold=0.85).groups]
    strict = [sorted(g.keys) for g in find_duplicates(index, threshold=0.985).groups]
    assert strict == [["a-copy-of-copy.jpg", "a-copy.jpg", "a.jpg"]]


def test_the_report_serialises_with_keys_and_scores(index):
    as_dict = find_duplicates(index).as_dict()
    assert as_dict["threshold"] == 0.95 and as_dict["images_scanned"] == 8
    assert {member["key"] for member in as_dict["groups"][1]["members"]} == {"b.jpg", "b-resized.jpg"}


def test_a_threshold_outside_half_to_one_is_refused(index):
    for threshold in (0.0, 0.49, 1.5, -1, float("nan"), "high"):
        with pytest.raises(InvalidRequestError):
            find_duplicates(index, threshold=threshold)
