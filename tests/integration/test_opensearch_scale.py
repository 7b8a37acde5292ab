"""OpenSearchIndex at scale against the real node: the backfill (settings off during the load, restored after,
everything searchable at the end) and the memory-saving storage options from the index URL."""

from __future__ import annotations

import json
import urllib.request
import uuid

import numpy as np
import pytest

from visual_search import bootstrap
from visual_search.core.errors import InvalidRequestError, ModelMismatchError
from visual_search.core.records import ImageRecord
from visual_search.indexes.opensearch.index import OpenSearchIndex

pytestmark = pytest.mark.opensearch
DIMENSION = 16


def node_json(base_url: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def index_url(opensearch_url):
    name = f"scale-it-{uuid.uuid4().hex[:10]}"
    yield f"{opensearch_url}/{name}"
    urllib.request.urlopen(urllib.request.Request(f"{opensearch_url}/{name}?ignore_unavailable=true", method="DELETE"))


def batches(count: int, per_batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for start in range(0, count, per_batch):
        vectors = rng.normal(size=(min(per_batch, count - start), DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield (
            [ImageRecord(f"k{start + i}", f"/c/{start + i}", "0" * 64, 1, 1, "l") for i in range(len(vectors))],
            vectors,
        )


def index_settings(opensearch_url: str, index_url: str) -> dict:
    name = index_url.rsplit("/", 1)[1]
    return node_json(opensearch_url, f"/{name}/_settings")[name]["settings"]["index"]


def test_bulk_load_writes_every_batch_in_parallel_and_leaves_them_searchable(index_url):
    with OpenSearchIndex(index_url, model_id="m", dimension=DIMENSION, refresh=False) as index:
        assert index.bulk_load(batches(1000, 50), threads=3) == 1000
        assert index.count() == 1000  # refreshed at the end although refresh was off during the load
        vector = index.get_vector("k123")
        assert index.search(vector, 1)[0].record.key == "k123"


def test_bulk_load_restores_refresh_and_replicas_as_they_were(opensearch_url, index_url):
    with OpenSearchIndex(index_url, model_id="m", dimension=DIMENSION, replicas=1) as index:
        name = index.index_name
        node_json(opensearch_url, f"/{name}/_settings", "PUT", {"index": {"refresh_interval": "7s"}})
        seen_during_load = []

        def watched():
            for batch in batches(200, 100):
                seen_during_load.append(index_settings(opensearch_url, index_url))
                yield batch

        index.bulk_load(watched(), threads=1)
    assert {(s["refresh_interval"], s["number_of_replicas"]) for s in seen_during_load} == {("-1", "0")}
    after = index_settings(opensearch_url, index_url)
    assert (after["refresh_interval"], after["number_of_replicas"]) == ("7s", "1")


def test_a_failed_bulk_load_still_restores_the_settings(opensearch_url, index_url):
    def bad_batches():
        yield from batches(100, 50)
        yield [ImageRecord("wrong", "/w", "0" * 64, 1, 1)], np.ones((1, DIMENSION + 1), dtype=np.float32)

    with OpenSearchIndex(index_url, model_id="m", dimension=DIMENSION) as index:
        with pytest.raises(ModelMismatchError):
            index.bulk_load(bad_batches(), threads=2)
        assert index.count() == 100
    settings = index_settings(opensearch_url, index_url)
    assert "refresh_interval" not in settings  # back to the node's default, as before the load
    assert settings["number_of_replicas"] == "1"  # what the node gave the index at creation


def test_memory_saving_storage_from_the_index_url_reaches_the_mapping(opensearch_url, index_url):
    url, options = bootstrap._opensearch_options(f"{index_url}?mode=on_disk&compression_level=4x")
    assert options == {"mode": "on_disk", "compression_level": "4x"}
    OpenSearchIndex(url, model_id="m", dimension=DIMENSION, **options).close()
    name = index_url.rsplit("/", 1)[1]
    vector = node_json(opensearch_url, f"/{name}/_mapping")[name]["mappings"]["properties"]["vector"]
    assert (vector["mode"], vector["compression_level"]) == ("on_disk", "4x")


def test_lucene_scalar_quantisation_is_mapped_and_searchable(opensearch_url, index_url):
    with OpenSearchIndex(index_url, model_id="m", dimension=DIMENSION, encoder="sq") as index:
        index.bulk_load(batches(300, 100))
        assert index.search(index.get_vector("k7"), 1)[0].record.key == "k7"
    name = index_url.rsplit("/", 1)[1]
    vector = node_json(opensearch_url, f"/{name}/_mapping")[name]["mappings"]["properties"]["vector"]
    assert vector["method"]["parameters"]["encoder"]["name"] == "sq"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "in_ram"}, "mode must be one of"),
        ({"compression_level": "3x"}, "compression_level must be one of"),
        ({"encoder": "fp16"}, "does not exist for the lucene engine"),
        ({"encoder": "sq", "compression_level": "4x"}, "either encoder or compression_level"),
    ],
)
def test_impossible_storage_options_are_refused_before_reaching_the_node(index_url, options, message):
    with pytest.raises(InvalidRequestError, match=message):
        OpenSearchIndex(index_url, model_id="m", dimension=DIMENSION, **options)


def test_a_compression_the_engine_lacks_is_a_clear_error_from_the_node(index_url):
    with pytest.raises(InvalidRequestError, match="32x"):
        OpenSearchIndex(index_url, model_id="m", dimension=DIMENSION, compression_level="32x")
