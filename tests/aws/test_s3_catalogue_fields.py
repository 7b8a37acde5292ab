"""Labels, attributes and product fields on the AWS path (moto S3 + the loopback endpoint + the embedded index):
from x-amz-meta-* user metadata and from the catalogue manifest in the bucket; mixed-case suffixes; one GET per
created object and a HEAD (no GET) per removal."""

from __future__ import annotations

import json
import logging

import pytest
from aws_fixtures import BUCKET, s3_event, sqs_batch

from visual_search.aws import handlers
from visual_search.stores.thumbnail_cache import THUMBNAIL_SIZES

MANIFEST = "catalogue.csv"


@pytest.fixture
def index_function(function_environment):
    """IndexFunction with the bucket's catalogue manifest configured."""
    function_environment(VISUAL_SEARCH_CATALOGUE_MANIFEST=MANIFEST)
    return lambda *batches: handlers.index_handler(sqs_batch(*batches), None)


def indexed(*keys: str) -> dict:
    return handlers._event_indexer.get().indexer.index.get(list(keys))


def put(s3, key: str, data: bytes, **metadata: str) -> dict:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, Metadata=metadata)
    return s3_event(BUCKET, key, created=True, sequencer=f"{abs(hash(key)) % 10**6:08X}")


def test_label_attributes_and_product_fields_come_from_the_objects_metadata(index_function, bucket, demo_photos):
    event = put(
        bucket,
        "shoes/runner.jpg",
        demo_photos[0].read_bytes(),
        label="Shoes",
        colour="red",
        title="Trail runner",
        price="59.90",
        currency="EUR",
        brand="Acme",
    )
    assert index_function([event]) == {"batchItemFailures": []}
    record = indexed("shoes/runner.jpg")["shoes/runner.jpg"]
    assert record.label == "Shoes"
    assert record.attributes["colour"] == "red" and record.attributes["s3_sequencer"]
    assert not {"label", "title", "price"} & set(record.attributes)
    assert (record.product.title, record.product.price, record.product.currency, record.product.brand) == (
        "Trail runner",
        59.9,
        "EUR",
        "Acme",
    )


def test_the_manifest_labels_what_the_metadata_does_not_say(index_function, bucket, demo_photos):
    bucket.put_object(
        Bucket=BUCKET,
        Key=MANIFEST,
        Body=(b"path,label,brand,season\na.jpg,Hat,Acme,winter\nb.jpg,Shirt,,summer\n"),
    )
    events = [
        put(bucket, "a.jpg", demo_photos[0].read_bytes()),
        put(bucket, "b.jpg", demo_photos[1].read_bytes(), label="T-Shirt"),
        put(bucket, "c.jpg", demo_photos[2].read_bytes()),
        s3_event(BUCKET, MANIFEST, created=True, sequencer="01"),
    ]  # the manifest's own event: not an image
    assert index_function(events) == {"batchItemFailures": []}
    records = indexed("a.jpg", "b.jpg", "c.jpg", MANIFEST)
    assert set(records) == {"a.jpg", "b.jpg", "c.jpg"}
    assert (records["a.jpg"].label, records["a.jpg"].attributes["season"], records["a.jpg"].product.brand) == (
        "Hat",
        "winter",
        "Acme",
    )
    assert records["b.jpg"].label == "T-Shirt" and records["b.jpg"].attributes["season"] == "summer"  # metadata wins
    assert records["c.jpg"].label is None


def test_a_reupload_without_labels_keeps_the_label_a_backfill_set(index_function, bucket, demo_photos):
    index_function([put(bucket, "k.jpg", demo_photos[0].read_bytes(), label="Dress")])
    bucket.put_object(Bucket=BUCKET, Key="k.jpg", Body=demo_photos[1].read_bytes())
    assert index_function([s3_event(BUCKET, "k.jpg", created=True, sequencer="FFFFFFFF")]) == {"batchItemFailures": []}
    record = indexed("k.jpg")["k.jpg"]
    assert record.label == "Dress" and record.attributes["s3_sequencer"] == "FFFFFFFF"


def test_a_malformed_manifest_is_logged_and_the_images_are_still_indexed(index_function, bucket, demo_photos, caplog):
    bucket.put_object(Bucket=BUCKET, Key=MANIFEST, Body=b"key,label\na.jpg,Hat\n")  # no path column
    with caplog.at_level(logging.ERROR):
        assert index_function([put(bucket, "a.jpg", demo_photos[0].read_bytes())]) == {"batchItemFailures": []}
    assert "catalogue manifest" in caplog.text and "path" in caplog.text
    assert indexed("a.jpg")["a.jpg"].label is None


def test_mixed_case_suffixes_are_indexed_and_other_keys_ignored(index_function, bucket, demo_photos):
    keys = ["x.Jpg", "y.JPEG", "z.PnG"]
    events = [put(bucket, key, demo_photos[n].read_bytes()) for n, key in enumerate(keys)]
    events += [put(bucket, "notes.TXT", b"hello"), put(bucket, "folder/", b"")]
    assert index_function(events) == {"batchItemFailures": []}
    assert set(indexed(*keys, "notes.TXT", "folder/")) == set(keys)


def test_each_created_object_is_fetched_once_and_a_removal_only_heads(index_function, bucket, demo_photos):
    first = [put(bucket, f"{n}.jpg", demo_photos[n].read_bytes(), label="L") for n in range(3)]
    index_function(first[:1])  # builds the services
    calls: list[str] = []
    store = handlers._event_indexer.get().indexer.store_for_bucket(BUCKET)
    store.client.meta.events.register("before-call.s3", lambda model, **kwargs: calls.append(model.name))
    index = handlers._event_indexer.get().indexer.index.inner
    lookups: list[list[str]] = []
    real_get = index.get
    index.get = lambda keys: lookups.append(sorted(keys)) or real_get(keys)

    assert index_function(first[1:]) == {"batchItemFailures": []}
    reads = [call for call in calls if call != "PutObject"]
    assert reads == ["GetObject", "GetObject"]  # the two images; the manifest was read by the first batch (cached)
    assert calls.count("PutObject") == 2 * len(THUMBNAIL_SIZES)  # each image's thumbnails, made from that one GET
    assert lookups == [["1.jpg", "2.jpg"]] * 2  # planned once, compared once just before the write
    calls.clear()
    bucket.delete_object(Bucket=BUCKET, Key="1.jpg")
    assert index_function([s3_event(BUCKET, "1.jpg", created=False, sequencer="FFFFFFFFF")]) == {
        "batchItemFailures": []
    }
    assert calls == ["HeadObject", "DeleteObjects"]  # is it gone? then its thumbnails, in one request
    assert set(indexed("0.jpg", "1.jpg", "2.jpg")) == {"0.jpg", "2.jpg"}


def test_metadata_with_a_malformed_product_url_is_ignored_with_a_log_line(index_function, bucket, demo_photos, caplog):
    with caplog.at_level(logging.ERROR):
        event = put(bucket, "p.jpg", demo_photos[0].read_bytes(), label="Bag", product_url="javascript:alert(1)")
        assert index_function([event]) == {"batchItemFailures": []}
    assert "product_url" in caplog.text
    record = indexed("p.jpg")["p.jpg"]
    assert record.product.product_url is None


def test_non_ascii_metadata_sent_as_rfc_2047_is_decoded(index_function, bucket, demo_photos):
    event = put(bucket, "r.jpg", demo_photos[0].read_bytes(), label="=?UTF-8?B?w6lwaW5nbGU=?=")
    index_function([event])
    assert indexed("r.jpg")["r.jpg"].label == "épingle"


def test_missing_setting_fails_every_item_with_a_log_naming_it(
    index_function, bucket, demo_photos, monkeypatch, caplog
):
    monkeypatch.delenv("VISUAL_SEARCH_SAGEMAKER_ENDPOINT")
    handlers.reset_cached_services()
    with caplog.at_level(logging.ERROR):
        response = index_function([put(bucket, "a.jpg", demo_photos[0].read_bytes())], [])
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-0"}, {"itemIdentifier": "message-1"}]}
    logged = next(json.loads(r.getMessage()) for r in caplog.records if "missing_setting" in r.getMessage())
    assert logged["code"] == "missing_setting" and "VISUAL_SEARCH_SAGEMAKER_ENDPOINT" in logged["message"]


def test_the_write_keeps_an_equal_or_later_sequencer_and_drops_an_older_one(tmp_path):
    import numpy as np

    from visual_search.core.records import ImageRecord
    from visual_search.indexes.local.index import LocalIndex
    from visual_search.services.sequenced_index import SequencedIndex

    index = SequencedIndex(LocalIndex(tmp_path / "index", model_id="m", dimension=2, writable=True))

    def write(sequencer: str, label: str) -> str | None:
        record = ImageRecord(
            key="k.jpg",
            uri="s3://b/k.jpg",
            content_hash="h",
            width=1,
            height=1,
            label=label,
            attributes={"s3_sequencer": sequencer} if sequencer else {},
        )
        index.upsert([record], np.array([[1.0, 0.0]], dtype=np.float32))
        return index.get(["k.jpg"])["k.jpg"].label

    try:
        assert write("", "first") == "first"
        assert write("", "re-indexed") == "re-indexed"  # no sequencer yet on either side: a re-index
        assert write("0A", "event") == "event"
        assert write("0A", "same event again") == "same event again"
        assert write("09", "older") == "same event again"
        assert write("", "no sequencer") == "same event again"
        assert write("0B", "later") == "later"
    finally:
        index.close()
