"""The index URL carries the replica count a new index is created with: `?replicas=0` keeps a one-node cluster's
index green (one replica can never be placed on the node holding its primary, so the index stays yellow)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from visual_search.bootstrap import build_embedder, open_index
from visual_search.core.errors import InvalidSettingError
from visual_search.core.settings import Settings


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(Settings())


def _nodes(opensearch_url: str) -> int:
    return int(httpx.get(f"{opensearch_url}/_cluster/health").json()["number_of_nodes"])


@pytest.mark.parametrize("replicas", [0, 1])
def test_a_new_index_gets_the_replicas_its_url_names(opensearch_url, embedder, replicas):
    url = f"{opensearch_url}/replicas-{replicas}-{uuid.uuid4().hex[:8]}"
    index = open_index(Settings(index=f"{url}?replicas={replicas}"), writable=True, embedder=embedder)
    try:
        settings = next(iter(httpx.get(f"{url}/_settings").json().values()))["settings"]["index"]
        assert settings["number_of_replicas"] == str(replicas)
        health = httpx.get(f"{opensearch_url}/_cluster/health/{index.index_name}?wait_for_active_shards=1&timeout=10s")
        expected = "green" if replicas < _nodes(opensearch_url) else "yellow"
        assert health.json()["status"] == expected
    finally:
        index.drop()


def test_an_existing_index_keeps_its_replicas(opensearch_url, embedder):
    """The option applies at creation only, like the HNSW settings: reopening with another count changes nothing."""
    url = f"{opensearch_url}/replicas-kept-{uuid.uuid4().hex[:8]}"
    open_index(Settings(index=f"{url}?replicas=0"), writable=True, embedder=embedder).close()
    index = open_index(Settings(index=f"{url}?replicas=2"), writable=True, embedder=embedder)
    try:
        settings = next(iter(httpx.get(f"{url}/_settings").json().values()))["settings"]["index"]
        assert settings["number_of_replicas"] == "0"
    finally:
        index.drop()


@pytest.mark.parametrize("value", ["-1", "one", ""])
def test_a_replica_count_that_is_not_a_whole_number_of_zero_or_more_is_refused(opensearch_url, embedder, value):
    url = f"{opensearch_url}/replicas-bad-{uuid.uuid4().hex[:8]}"
    with pytest.raises(InvalidSettingError, match="replicas"):
        open_index(Settings(index=f"{url}?replicas={value}"), writable=True, embedder=embedder)
    assert httpx.head(url).status_code == 404, "a refused option must not create the index"
