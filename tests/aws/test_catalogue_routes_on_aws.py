"""The catalogue routes on AWS (issue 15 §3): the search function serves GET /items, POST /items,
DELETE /items/{key+} and GET /duplicates through the same CatalogueApi as the local server. Adding an item puts
the object (label, product fields and attributes as x-amz-meta-*) and the bucket's event indexes it; deleting
removes the object and its event removes the record. moto S3 + the loopback endpoint + the embedded index."""

from __future__ import annotations

import base64
import json

import pytest
from aws_fixtures import BUCKET, s3_event, sqs_batch
from urllib3 import encode_multipart_formdata

from visual_search.aws import handlers

KEY = "s3cret"


@pytest.fixture
def functions(function_environment, bucket, demo_photos):
    """Both functions' environments, with an API key; one image is indexed first, as the search function needs an
    index to start."""
    function_environment(VISUAL_SEARCH_API_KEY=KEY)
    bucket.put_object(Bucket=BUCKET, Key="seed.jpg", Body=demo_photos[0].read_bytes())
    assert index_events([s3_event(BUCKET, "seed.jpg", created=True, sequencer="01")]) == {"batchItemFailures": []}


def index_events(records: list[dict]) -> dict:
    return handlers.index_handler(sqs_batch(records), None)


def indexed(*keys: str) -> dict:
    return handlers._event_indexer.get().indexer.index.get(list(keys))


def http(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    api_key: str | None = KEY,
    route: str = "$default",
    path_key: str | None = None,
    query: dict | None = None,
) -> tuple[int, dict]:
    headers = {"content-type": content_type} if content_type else {}
    if api_key is not None:
        headers["x-api-key"] = api_key
    event = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "headers": headers,
        "queryStringParameters": query,
        "pathParameters": {"key": path_key} if path_key else None,
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    response = handlers.search_handler(event)
    return response["statusCode"], json.loads(response["body"] or "{}")


def object_keys(bucket) -> list[str]:
    return [entry["Key"] for entry in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", ())]


def catalogue_keys(bucket) -> list[str]:
    """The bucket's objects but the thumbnails the index function writes beside each indexed image."""
    return [key for key in object_keys(bucket) if not key.startswith("thumbnails/")]


def add_item(data: bytes, api_key: str | None = KEY, **fields: str) -> tuple[int, dict]:
    body, content_type = encode_multipart_formdata({"file": ("photo.jpg", data, "image/jpeg"), **fields})
    return http("POST", "/items", body=body, content_type=content_type, api_key=api_key)


def test_adding_an_item_puts_the_object_and_its_event_indexes_it_with_label_and_product(functions, bucket, demo_photos):
    status, body = add_item(
        demo_photos[1].read_bytes(),
        key="shoes/runner.jpg",
        label="Shoes",
        title="Trail runner",
        price="59.90",
        currency="EUR",
        attributes='{"colour": "red"}',
    )
    assert (status, body["key"]) == (202, "shoes/runner.jpg")
    stored = bucket.get_object(Bucket=BUCKET, Key="shoes/runner.jpg")
    assert stored["Body"].read() == demo_photos[1].read_bytes()
    assert {name: stored["Metadata"].get(name) for name in ("label", "title", "price", "currency", "colour")} == {
        "label": "Shoes",
        "title": "Trail runner",
        "price": "59.9",
        "currency": "EUR",
        "colour": "red",
    }
    assert not indexed("shoes/runner.jpg"), "indexing is the event's job, not the search function's"

    assert index_events([s3_event(BUCKET, "shoes/runner.jpg", created=True, sequencer="02")]) == {
        "batchItemFailures": []
    }
    record = indexed("shoes/runner.jpg")["shoes/runner.jpg"]
    assert (record.label, record.attributes["colour"]) == ("Shoes", "red")
    assert (record.product.title, record.product.price, record.product.currency) == ("Trail runner", 59.9, "EUR")

    handlers._search_runtime.reset()  # a new container: the embedded index is reopened (OpenSearch is live)
    status, page = http("GET", "/items", query={"limit": "10"})
    assert status == 200 and page["total"] == 2
    assert [item["key"] for item in page["items"]] == ["seed.jpg", "shoes/runner.jpg"]
    assert page["items"][1]["label"] == "Shoes" and page["items"][1]["title"] == "Trail runner"
    assert page["label_counts"] == {"Shoes": 1}

    status, body = add_item(demo_photos[2].read_bytes(), key="shoes/runner.jpg")
    assert (status, body["error"]["code"]) == (409, "key_exists")


def test_an_added_object_whose_event_is_still_queued_cannot_be_overwritten(functions, bucket, demo_photos):
    assert add_item(demo_photos[1].read_bytes(), key="queued.jpg")[0] == 202
    status, body = add_item(demo_photos[2].read_bytes(), key="queued.jpg")
    assert (status, body["error"]["code"]) == (409, "key_exists")
    assert bucket.get_object(Bucket=BUCKET, Key="queued.jpg")["Body"].read() == demo_photos[1].read_bytes()


def test_deleting_removes_the_object_and_its_event_removes_the_record(functions, bucket):
    status, body = http("DELETE", "/items/seed.jpg", route="DELETE /items/{key+}", path_key="seed.jpg")
    assert (status, body) == (200, {"deleted": "seed.jpg"})
    assert not [key for key in object_keys(bucket) if not key.startswith("thumbnails/")]
    assert indexed("seed.jpg"), "the record stays until the bucket's event removes it"
    summary = index_events([s3_event(BUCKET, "seed.jpg", created=False, sequencer="02")])
    assert summary == {"batchItemFailures": []} and not indexed("seed.jpg")
    assert object_keys(bucket) == [], "the event removes the image's thumbnails with its record"

    status, body = http("DELETE", "/items/nothing-here.jpg")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_the_write_routes_need_the_key_and_reads_need_it_when_one_is_set(functions, bucket, demo_photos):
    photo = demo_photos[1].read_bytes()
    for api_key in (None, "wrong"):
        assert add_item(photo, api_key=api_key, key="x.jpg")[1]["error"]["code"] == "unauthorized"
        status, body = http("DELETE", "/items/seed.jpg", api_key=api_key)
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        for path in ("/items", "/duplicates"):
            assert http("GET", path, api_key=api_key)[0] == 401
    assert add_item(photo, api_key="wrong", key="x.jpg")[0] == 401
    assert catalogue_keys(bucket) == ["seed.jpg"]
    assert http("GET", "/duplicates", query={"threshold": "0.95"})[0] == 200


def test_with_no_key_configured_writes_are_disabled_and_reads_open(functions, monkeypatch, bucket, demo_photos):
    monkeypatch.delenv("VISUAL_SEARCH_API_KEY")
    handlers._search_runtime.reset()
    status, body = add_item(demo_photos[1].read_bytes(), api_key=None, key="x.jpg")
    assert (status, body["error"]["code"]) == (403, "writes_disabled")
    assert "WriteApiKeyParameterName" in body["error"]["message"]
    assert http("DELETE", "/items/seed.jpg", api_key=None)[0] == 403
    assert http("GET", "/items", api_key=None)[0] == 200
    assert catalogue_keys(bucket) == ["seed.jpg"]


def test_a_key_with_a_control_character_is_refused_before_anything_is_written(functions, bucket, demo_photos):
    for bad in ("bad\x7fname.jpg", "bad\x85name.jpg", "bad\x1bname.jpg"):
        status, body = add_item(demo_photos[1].read_bytes(), key=bad)
        assert (status, body["error"]["code"]) == (400, "invalid_request"), bad
        assert "control character" in body["error"]["message"]
    assert catalogue_keys(bucket) == ["seed.jpg"]


def test_an_object_with_a_bad_key_is_reported_and_skipped_not_retried(functions, bucket, demo_photos, caplog):
    bucket.put_object(Bucket=BUCKET, Key="bad\x7fname.jpg", Body=demo_photos[1].read_bytes())
    not_utf8 = s3_event(BUCKET, "placeholder.jpg", created=True, sequencer="03")
    not_utf8["s3"]["object"]["key"] = "caf%E9.jpg"  # Latin-1 bytes, not UTF-8
    events = [s3_event(BUCKET, "bad\x7fname.jpg", created=True, sequencer="03"), not_utf8]
    assert index_events(events) == {"batchItemFailures": []}
    assert not indexed("bad\x7fname.jpg", "café.jpg", "caf\ufffd.jpg")
    assert handlers._event_indexer.get().indexer.index.list_records(offset=0, limit=10).total == 1  # the seed only
    skipped = [r.getMessage() for r in caplog.records if '"skipped"' in r.getMessage()]
    assert len(skipped) == 2 and "U+007F" in skipped[0] and "not valid UTF-8" in skipped[1]

    direct = handlers.index_handler({"Records": events})
    assert [entry["reason"] for entry in direct["skipped"]] == [
        "the object 'bad\\x7fname.jpg' was not indexed: its name holds the control character U+007F at position 4; "
        "rename it",
        "the object 'caf\\xe9.jpg' was not indexed: its name is not valid UTF-8; rename it",
    ]
    assert direct["failed"] == []


def test_with_an_images_prefix_added_keys_go_under_it_and_nothing_outside_it_is_deleted(
    functions, monkeypatch, bucket, demo_photos
):
    monkeypatch.setenv("VISUAL_SEARCH_IMAGE_STORE", f"s3://{BUCKET}/catalogue/")  # as template.yaml sets it
    handlers._search_runtime.reset()
    assert add_item(demo_photos[1].read_bytes(), key="hats/red.jpg") == (
        202,
        {"key": "catalogue/hats/red.jpg", "status": "stored; it is indexed when the bucket's event is processed"},
    )
    assert add_item(demo_photos[2].read_bytes(), key="catalogue/hats/blue.jpg")[1]["key"] == "catalogue/hats/blue.jpg"
    keys = catalogue_keys(bucket)
    assert keys == ["catalogue/hats/blue.jpg", "catalogue/hats/red.jpg", "seed.jpg"]
    status, body = http("DELETE", "/items/seed.jpg")  # indexed, but outside the prefix the role may write
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert "seed.jpg" in catalogue_keys(bucket)


def test_an_added_item_gets_the_upload_limit_of_search(functions, monkeypatch, bucket):
    monkeypatch.setenv("VISUAL_SEARCH_MAX_UPLOAD_BYTES", "100000")
    handlers._search_runtime.reset()
    status, body = add_item(b"\xff\xd8" + bytes(300_000), key="big.jpg")
    assert (status, body["error"]["code"]) == (413, "payload_too_large") and "-byte limit" in body["error"]["message"]
    assert catalogue_keys(bucket) == ["seed.jpg"]
