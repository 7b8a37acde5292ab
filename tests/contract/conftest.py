"""One VectorIndex contract suite, run against every backend: the embedded index and a real OpenSearch node."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from visual_search.core.ports import VectorIndex

IndexFactory = Callable[..., VectorIndex]


@pytest.fixture(params=["embedded", "opensearch"])
def make_index(request, tmp_path):
    """make_index(model_id="test-model", dimension=8) -> a fresh, empty, writable VectorIndex."""
    created: list[VectorIndex] = []
    cleanups: list[Callable[[], None]] = []

    if request.param == "embedded":
        from visual_search.indexes.local.index import LocalIndex

        def factory(model_id: str = "test-model", dimension: int = 8, name: str = "index") -> VectorIndex:
            index = LocalIndex(tmp_path / name, model_id=model_id, dimension=dimension, writable=True)
            created.append(index)
            return index
    else:
        base_url = request.getfixturevalue("opensearch_url")
        run_id = uuid.uuid4().hex[:10]  # one per test, so the same name reopens the same OpenSearch index
        from visual_search.indexes.opensearch.index import OpenSearchIndex

        def factory(model_id: str = "test-model", dimension: int = 8, name: str = "index") -> VectorIndex:
            index_name = f"contract-{name}-{run_id}"
            index = OpenSearchIndex(f"{base_url}/{index_name}", model_id=model_id, dimension=dimension)
            created.append(index)
            if index.drop not in cleanups:
                cleanups.append(index.drop)
            return index

    yield factory
    for index in created:
        close = getattr(index, "close", None)
        if close:
            close()
    for cleanup in cleanups:
        cleanup()
