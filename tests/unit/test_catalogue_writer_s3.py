"""The AWS shape of adding and deleting items: the writer only puts and deletes objects in the bucket (moto), with
label and product fields as user metadata, and leaves indexing to the bucket's events; nothing is embedded."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fakes import ColourGridEmbedder
from PIL import Image

from visual_search.core.errors import InvalidImageError, NotFoundError
from visual_search.core.records import ImageRecord, Product
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.catalogue import BucketWriter
from visual_search.stores.s3 import S3ImageStore


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def bucket_writer(tmp_path, monkeypatch):
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        store = S3ImageStore("images", region_name="us-east-1")
        store.client.create_bucket(Bucket="images")
        embedder = ColourGridEmbedder()
        index = LocalIndex(tmp_path / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
        writer = BucketWriter(index, store)
        yield writer, store, embedder
        index.close()


def test_adding_puts_the_object_with_its_fields_as_metadata_and_embeds_nothing(bucket_writer):
    writer, store, embedder = bucket_writer
    key, record = writer.add(
        jpeg(),
        "new/red.jpg",
        label="Shoes",
        attributes={"colour": "red"},
        product=Product(title="Red shoe", price=19.5, currency="EUR"),
        max_pixels=10**6,
    )
    assert (key, record) == ("new/red.jpg", None)
    head = store.client.head_object(Bucket="images", Key="new/red.jpg")
    assert head["Metadata"] == {
        "label": "Shoes",
        "colour": "red",
        "title": "Red shoe",
        "price": "19.5",
        "currency": "EUR",
    }
    assert store.read("new/red.jpg") == jpeg()
    assert writer.index.count() == 0 and embedder.calls == 0


def test_a_non_image_is_refused_before_anything_reaches_the_bucket(bucket_writer):
    writer, store, _ = bucket_writer
    with pytest.raises(InvalidImageError):
        writer.add(b"<html>not an image</html>", "x.jpg", max_pixels=10**6)
    assert list(store.list_keys()) == []


def test_deleting_removes_the_object_and_leaves_the_record_to_the_removal_event(bucket_writer):
    writer, store, _ = bucket_writer
    store.put("old.jpg", jpeg())
    vector = np.zeros((1, writer.index.dimension), dtype=np.float32)
    vector[0, 0] = 1.0
    writer.index.upsert([ImageRecord("old.jpg", store.uri("old.jpg"), "0" * 64, 40, 30)], vector)
    assert writer.delete("old.jpg").key == "old.jpg"
    assert list(store.list_keys()) == []
    assert writer.index.count() == 1  # the ObjectRemoved event removes it, as for any deletion from the bucket
    with pytest.raises(NotFoundError):
        writer.delete("never-indexed.jpg")
