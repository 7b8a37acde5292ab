"""An embedded index made before product data (no images.product column) opens, keeps its records, and takes
product data afterwards."""

from __future__ import annotations

import sqlite3

import numpy as np

from visual_search.core.records import ImageRecord, Product
from visual_search.indexes.local.database import DATABASE_FILE_NAME
from visual_search.indexes.local.index import LocalIndex


def _record(key: str, product: Product = Product()) -> ImageRecord:
    return ImageRecord(
        key=key,
        uri=f"/c/{key}.jpg",
        content_hash="cd" * 32,
        width=10,
        height=10,
        label="Hat",
        attributes={"kids": "no"},
        indexed_at=1.0,
        product=product,
    )


def _drop_product_column(directory) -> None:
    """Rewrites the images table as the previous release created it (without `product`)."""
    connection = sqlite3.connect(directory / DATABASE_FILE_NAME, isolation_level=None)
    connection.execute("ALTER TABLE images DROP COLUMN product")
    columns = {row[1] for row in connection.execute("PRAGMA table_info(images)")}
    connection.close()
    assert "product" not in columns


def test_an_index_without_the_product_column_survives_and_then_stores_products(tmp_path):
    vectors = np.eye(4, dtype=np.float32)
    with LocalIndex(tmp_path, model_id="m", dimension=4, writable=True) as index:
        index.upsert([_record("old-hat")], vectors[:1])
    _drop_product_column(tmp_path)

    with LocalIndex(tmp_path, writable=False) as reader:  # a reader opens the old layout
        assert reader.get(["old-hat"])["old-hat"].attributes == {"kids": "no"}
    boater = Product(title="Straw boater", price=25.0, currency="EUR", product_url="https://shop.example/boater")
    with LocalIndex(tmp_path, model_id="m", dimension=4, writable=True) as index:
        index.upsert([_record("new-hat", boater)], vectors[1:2])
        found = index.get(["old-hat", "new-hat"])
        assert found["old-hat"].product.is_empty and found["old-hat"].label == "Hat"
        assert found["new-hat"].product == boater
        assert index.search(vectors[1], 1)[0].record.product == boater
        assert index.count() == 2
