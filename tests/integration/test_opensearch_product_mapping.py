"""An OpenSearch index created before product data (strict mapping without `product`) keeps its documents and
takes product data on the first write that carries some: the field is added to the live mapping."""

from __future__ import annotations

import json
import urllib.request
import uuid

import numpy as np
import pytest

from visual_search.core.records import ImageRecord, Product
from visual_search.indexes.opensearch import documents as docs
from visual_search.indexes.opensearch.index import OpenSearchIndex

DIMENSION = 4


def node(base_url: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def old_index(opensearch_url):
    """An index with the mapping of the release before product data, holding one record."""
    name = f"issue14-products-{uuid.uuid4().hex[:10]}"
    body = docs.index_body(
        model_id="m",
        dimension=DIMENSION,
        engine="lucene",
        m=16,
        ef_construction=64,
        ef_search=100,
        shards=1,
        replicas=0,
    )
    del body["mappings"]["properties"]["product"]
    node(opensearch_url, f"/{name}", "PUT", body)
    old = {
        "key": "old-hat",
        "uri": "/c/old-hat.jpg",
        "content_hash": "ab" * 32,
        "label": "Hat",
        "attributes": {},
        "model_id": "m",
        "width": 10,
        "height": 10,
        "indexed_at": 1.0,
        "vector": [1.0, 0.0, 0.0, 0.0],
    }
    node(opensearch_url, f"/{name}/_doc/old-hat?refresh=true", "PUT", old)
    yield f"{opensearch_url}/{name}"
    urllib.request.urlopen(urllib.request.Request(f"{opensearch_url}/{name}?ignore_unavailable=true", method="DELETE"))


def test_an_old_index_takes_product_data_and_keeps_its_records(old_index):
    boater = Product(title="Straw boater", price=25.0, currency="EUR", product_url="https://shop.example/boater")
    record = ImageRecord(
        key="new-hat", uri="/c/new-hat.jpg", content_hash="cd" * 32, width=10, height=10, label="Hat", product=boater
    )
    with OpenSearchIndex(old_index, model_id="m", dimension=DIMENSION, refresh=True) as index:
        index.upsert([record], np.asarray([[0.0, 1.0, 0.0, 0.0]], dtype=np.float32))
        found = index.get(["old-hat", "new-hat"])
        assert found["new-hat"].product == boater
        assert found["old-hat"].product.is_empty and found["old-hat"].label == "Hat"
        assert index.search(np.asarray([0.0, 1.0, 0.0, 0.0], dtype=np.float32), 1)[0].record.product == boater
