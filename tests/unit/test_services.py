"""The indexing and search services over the embedded index, with a small deterministic embedder."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fakes import HistogramEmbedder, PixelHistogramEmbedder
from PIL import Image

from visual_search.core.errors import InvalidImageError, InvalidRequestError, NotFoundError
from visual_search.core.images import CropBox
from visual_search.core.records import SearchFilters
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.services.search import SearchService

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 40)}


def png(colour, size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def item(key, data, label=None, **attributes) -> IndexItem:
    return IndexItem(key=key, uri=f"/catalogue/{key}", read=lambda: data, label=label, attributes=attributes)


@pytest.fixture(params=[HistogramEmbedder, PixelHistogramEmbedder])
def services(tmp_path, request):
    """Each test twice: with an embedder of images (one batch at a time) and one of model pixels, as the
    in-process model is fed (two batches in flight)."""
    embedder = request.param()
    index = LocalIndex(tmp_path / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
    yield IndexingService(embedder, index, batch_size=2, workers=2), SearchService(embedder, index)
    index.close()


def test_indexing_reports_bad_files_and_goes_on(services):
    indexer, _ = services
    items = [item(f"{name}.png", png(rgb)) for name, rgb in COLOURS.items()]
    items.insert(1, item("broken.jpg", b"not an image at all"))
    items.append(
        IndexItem("missing.jpg", "/nowhere/missing.jpg", read=lambda: open("/nowhere/missing.jpg", "rb").read())
    )
    report = indexer.index_items(items)
    assert report.indexed == 4 and report.unchanged == 0
    assert {failure.key for failure in report.failed} == {"broken.jpg", "missing.jpg"}
    assert all(failure.reason for failure in report.failed)
    assert indexer.index.count() == 4


def test_reindexing_skips_unchanged_and_replaces_changed(services):
    indexer, searcher = services
    indexer.index_items([item("a.png", png(COLOURS["red"]), "Shirt"), item("b.png", png(COLOURS["blue"]))])
    again = indexer.index_items([item("a.png", png(COLOURS["red"]), "Shirt"), item("b.png", png(COLOURS["green"]))])
    assert (again.indexed, again.unchanged) == (1, 1)
    assert indexer.index.count() == 2
    top = searcher.search_image(png(COLOURS["green"]), k=1).hits[0]
    assert top.record.key == "b.png" and top.score == pytest.approx(1.0, abs=1e-5)


def test_a_changed_label_alone_is_reindexed(services):
    indexer, _ = services
    indexer.index_items([item("a.png", png(COLOURS["red"]), "Shirt")])
    report = indexer.index_items([item("a.png", png(COLOURS["red"]), "Dress")])
    assert report.indexed == 1
    assert indexer.index.get(["a.png"])["a.png"].label == "Dress"


def test_search_ranks_by_descending_score_and_honours_filters(services):
    indexer, searcher = services
    indexer.index_items(
        [item(f"{n}.png", png(rgb), "warm" if n in ("red", "yellow") else "cold") for n, rgb in COLOURS.items()]
    )
    outcome = searcher.search_image(png((225, 40, 35)), k=4)
    scores = [hit.score for hit in outcome.hits]
    assert outcome.hits[0].record.key == "red.png" and scores == sorted(scores, reverse=True)
    assert outcome.took_ms >= 0
    cold = searcher.search_image(png(COLOURS["red"]), k=4, filters=SearchFilters(labels=frozenset({"cold"})))
    assert {hit.record.key for hit in cold.hits} == {"green.png", "blue.png"}


def test_more_like_this_excludes_the_image_itself(services):
    indexer, searcher = services
    indexer.index_items([item(f"{n}.png", png(rgb)) for n, rgb in COLOURS.items()])
    keys = [hit.record.key for hit in searcher.search_key("red.png", k=10).hits]
    assert "red.png" not in keys and len(keys) == 3
    with pytest.raises(NotFoundError):
        searcher.search_key("nope.png")


def test_crop_searches_the_region(services):
    indexer, searcher = services
    indexer.index_items([item(f"{n}.png", png(rgb)) for n, rgb in COLOURS.items()])
    half_and_half = Image.new("RGB", (100, 50), COLOURS["blue"])
    half_and_half.paste(COLOURS["yellow"], (50, 0, 100, 50))
    buffer = io.BytesIO()
    half_and_half.save(buffer, "PNG")
    right = searcher.search_image(buffer.getvalue(), k=1, crop=CropBox(0.5, 0, 0.5, 1)).hits[0]
    left = searcher.search_image(buffer.getvalue(), k=1, crop=CropBox(0, 0, 0.5, 1)).hits[0]
    assert (right.record.key, left.record.key) == ("yellow.png", "blue.png")


@pytest.mark.parametrize("k", [0, 101, -1, "3", True, 2.5])
def test_k_outside_one_to_a_hundred_is_refused(services, k):
    _, searcher = services
    with pytest.raises(InvalidRequestError):
        searcher.search_image(png(COLOURS["red"]), k=k)


def test_a_bad_query_leaves_the_index_unchanged(services):
    indexer, searcher = services
    indexer.index_items([item("a.png", png(COLOURS["red"]))])
    before = indexer.index.get_vector("a.png").copy()
    with pytest.raises(InvalidImageError):
        searcher.search_image(b"\xff\xd8\xff garbage")
    assert indexer.index.count() == 1 and np.array_equal(indexer.index.get_vector("a.png"), before)


def test_progress_counts_a_new_image_only_once_its_batch_is_committed(services):
    indexer, _ = services
    seen = []

    def progress(count):
        seen.append((count, indexer.index.count()))

    indexer.index_items([item(f"{n}.png", png(rgb)) for n, rgb in COLOURS.items()], progress=progress)
    settled = 0
    for count, committed in seen:
        settled += count
        assert committed >= settled  # never reports more than the index holds
    assert settled == len(COLOURS)


def test_the_same_key_twice_in_one_run_is_indexed_once_with_the_last_bytes(services):
    indexer, searcher = services
    report = indexer.index_items([item("a.png", png(COLOURS["red"])), item("a.png", png(COLOURS["blue"]))])
    assert report.failed == [] and indexer.index.count() == 1
    assert searcher.search_image(png(COLOURS["blue"]), k=1).hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_the_same_bytes_from_another_place_update_the_records_uri(services):
    indexer, _ = services
    data = png(COLOURS["red"])
    indexer.index_items([IndexItem("a.png", "/old/a.png", read=lambda: data)])
    report = indexer.index_items([IndexItem("a.png", "/new/a.png", read=lambda: data)])
    assert report.indexed == 1 and indexer.index.get(["a.png"])["a.png"].uri == "/new/a.png"
