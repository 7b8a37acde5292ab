"""Shared fixtures of the hostile-input tests: a small real embedded index, and checks that nothing leaked or changed."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.search import SearchService

from corpus import demo_photo_paths, known_key
from fakes import HistogramEmbedder

def _root_conftest():
    """tests/conftest.py, whose module name this file shadows for the hostile tests."""
    spec = importlib.util.spec_from_file_location("tests_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


require_service = _root_conftest().require_service
REPO_ROOT = Path(__file__).resolve().parents[2]
INDEXED_PHOTOS = 12
# What a Python stack trace looks like in text: the header, or a frame line.
_STACK_TRACE = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line \d+')


def assert_no_stack_trace(text: str) -> None:
    match = _STACK_TRACE.search(text)
    assert match is None, f"a stack trace leaked: ...{text[max(0, match.start() - 200): match.end() + 200]}..."


@dataclass(frozen=True)
class IndexSnapshot:
    """What a bad query must never change: the record count, every key's content hash, one key's vector."""

    count: int
    hashes: dict[str, str]
    vector: bytes

    @classmethod
    def of(cls, directory: Path) -> "IndexSnapshot":
        with LocalIndex(directory, writable=False) as index:
            vector = index.get_vector(known_key())
            assert vector is not None, "the known key must be indexed"
            return cls(index.count(), index.keys_with_hashes(), np.asarray(vector, dtype=np.float32).tobytes())


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
