"""Product data (title, price, currency, product_url, brand) is stored and returned alike by every backend."""

from __future__ import annotations

import numpy as np

from visual_search.core.records import ImageRecord, Product

DIMENSION = 8


def _record(key: str, product: Product) -> ImageRecord:
    return ImageRecord(
        key=key,
        uri=f"/catalogue/{key}.jpg",
        content_hash="ab" * 32,
        width=640,
        height=480,
        label="Shoes",
        attributes={"colour": "red"},
        indexed_at=1_700_000_000.0,
        product=product,
    )


SNEAKER = Product(
    title="Canvas sneaker",
    price=59.9,
    currency="EUR",
    product_url="https://shop.example/p/canvas-sneaker?ref=1",
    brand="Northwind",
)


def test_product_fields_round_trip_through_get_and_search(make_index):
    index = make_index(dimension=DIMENSION)
    vectors = np.eye(DIMENSION, dtype=np.float32)[:2]
    index.upsert([_record("sneaker", SNEAKER), _record("plain", Product())], vectors)
    stored = index.get(["sneaker", "plain"])
    assert stored["sneaker"].product == SNEAKER
    assert stored["sneaker"].attributes == {"colour": "red"}  # product fields are not attributes
    assert stored["plain"].product == Product() and stored["plain"].product.is_empty
    top = index.search(vectors[0], 1)[0]
    assert top.record.key == "sneaker" and top.record.product == SNEAKER


def test_reindexing_a_key_replaces_its_product_data(make_index):
    index = make_index(dimension=DIMENSION)
    vector = np.eye(DIMENSION, dtype=np.float32)[:1]
    index.upsert([_record("sneaker", SNEAKER)], vector)
    cheaper = Product(title="Canvas sneaker", price=39.0, currency="EUR", product_url=SNEAKER.product_url)
    index.upsert([_record("sneaker", cheaper)], vector)
    assert index.get(["sneaker"])["sneaker"].product == cheaper
    assert index.count() == 1
