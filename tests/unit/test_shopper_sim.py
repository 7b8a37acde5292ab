"""The synthetic shopper benchmark is deterministic, uses every kind of damage, and its metrics score instances."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visual_search.core.images import decode_image
from visual_search.services.evaluation import score_retrieval
from visual_search.services.shopper_sim import STEP_PROBABILITY, shopper_queries

PHOTOS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "photos").glob("*.jpg"))


def load(index: int) -> Image.Image:
    return decode_image(PHOTOS[index % len(PHOTOS)].read_bytes()).image


def test_the_same_seed_gives_byte_identical_queries_and_another_seed_others():
    first = shopper_queries(5, 6, load, seed=3)
    again = shopper_queries(5, 6, load, seed=3)
    other = shopper_queries(5, 6, load, seed=4)
    assert [(q.source, q.jpeg, q.steps) for q in first] == [(q.source, q.jpeg, q.steps) for q in again]
    assert [q.jpeg for q in first] != [q.jpeg for q in other]


def test_queries_are_distinct_items_and_real_jpegs_of_a_shoppers_size():
    queries = shopper_queries(6, 6, load, seed=1)
    assert sorted(q.source for q in queries) == list(range(6))
    for query in queries:
        image = Image.open(io.BytesIO(query.jpeg))
        assert image.format == "JPEG" and min(image.size) >= 100
        assert query.steps[-1] == "jpeg" and set(query.steps[:-1]) <= set(STEP_PROBABILITY)
        assert query.jpeg != PHOTOS[query.source].read_bytes()


def test_over_many_queries_every_kind_of_damage_occurs():
    queries = shopper_queries(60, 60, load, seed=0)
    used = {step for query in queries for step in query.steps}
    assert used == set(STEP_PROBABILITY) | {"jpeg"}


def test_backgrounds_come_from_the_given_clutter_photos():
    clutter = Image.new("RGB", (400, 300), (0, 255, 0))
    queries = shopper_queries(40, 40, load, seed=2, backgrounds=[lambda: clutter])
    with_background = [q for q in queries if "background" in q.steps]
    assert with_background
    for query in with_background:
        pixels = np.asarray(Image.open(io.BytesIO(query.jpeg)).convert("RGB"), dtype=np.int16)
        greenish = (pixels[..., 1] > 180) & (pixels[..., 0] < 120) & (pixels[..., 2] < 120)
        assert greenish.mean() > 0.02  # the pure green clutter shows around the item


def test_instance_metrics_count_only_the_exact_item():
    gallery = np.eye(4, dtype=np.float32)
    queries = np.array([[0.9, 0.1, 0, 0], [0, 0.2, 0.8, 0]], dtype=np.float32)
    scores = score_retrieval(gallery, ["0", "1", "2", "3"], queries, ["0", "1"], k=2)
    assert scores.recall_at_1 == 0.5 and scores.recall_at_k == 1.0
    assert scores.mean_average_precision == pytest.approx((1.0 + 0.5) / 2)


def test_same_items_leaves_each_querys_own_gallery_image_out():
    gallery = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    labels = ["a", "a", "b"]
    other_views = gallery[[0, 1, 2]] + 0.01
    scores = score_retrieval(gallery, labels, other_views, labels, k=1, same_items=True)
    assert scores.queries == 2 and scores.recall_at_1 == 1.0  # "b" has no other item of its label
    with pytest.raises(ValueError, match="one query per gallery item"):
        score_retrieval(gallery, labels, other_views[:2], labels[:2], same_items=True)
