"""Shared fixtures of the hostile-input tests: a small real embedded index, and checks that nothing leaked or changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import demo_photo_paths
from fakes import HistogramEmbedder
from hostile_support import INDEXED_PHOTOS

from visual_search.indexes.local.index import LocalIndex
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.services.search import SearchService


@pytest.fixture(scope="session")
def hostile_index_dir(tmp_path_factory) -> Path:
    """An embedded index of a dozen demo photos (keys: file names), made with the fast colour-histogram embedder."""
    directory = tmp_path_factory.mktemp("hostile-index")
    embedder = HistogramEmbedder()
    photos = demo_photo_paths()[:INDEXED_PHOTOS]
    with LocalIndex(directory, model_id=embedder.model_id, dimension=embedder.dimension, writable=True) as index:
        service = IndexingService(embedder, index, batch_size=8, workers=2)
        report = service.index_items([IndexItem(path.name, str(path), path.read_bytes) for path in photos])
        assert report.indexed == len(photos) and not report.failed
    return directory


@pytest.fixture(scope="session")
def hostile_search_service(hostile_index_dir) -> SearchService:
    """A read-only search service over hostile_index_dir, as a server or a Lambda function would hold it."""
    embedder = HistogramEmbedder()
    return SearchService(embedder, LocalIndex(hostile_index_dir, writable=False))
