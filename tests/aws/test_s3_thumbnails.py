"""Thumbnails on AWS (issue 23 §2.11): indexing an image writes the local server's sizes under thumbnails/, the
search function hands result cards a thumbnail's presigned URL instead of the original's, and removing the image
removes them. moto S3, the loopback endpoint, the embedded index; real demo photos."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import unquote, urlsplit

import pytest
from aws_fixtures import BUCKET, s3_event, sqs_batch
from PIL import Image

from visual_search.aws import handlers
from visual_search.core.object_events import THUMBNAILS_ATTRIBUTE
from visual_search.stores.s3_thumbnails import RESULT_CARD_PX, thumbnail_key
from visual_search.stores.thumbnail_cache import THUMBNAIL_SIZES, ThumbnailCache


def index(*records: dict) -> dict:
    return handlers.index_handler(sqs_batch(*[[record] for record in records]), None)


def indexed(*keys: str) -> dict:
    return handlers._event_indexer.get().indexer.index.get(list(keys))


def keys_under(bucket, prefix: str) -> list[str]:
    return sorted(e["Key"] for e in bucket.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", ()))


def search(photo: bytes) -> dict:
    event = {
        "version": "2.0",
        "routeKey": "POST /search",
        "rawPath": "/search",
        "headers": {"content-type": "image/jpeg"},
        "requestContext": {"http": {"method": "POST", "path": "/search"}, "stage": "$default"},
        "body": base64.b64encode(photo).decode(),
        "isBase64Encoded": True,
    }
    response = handlers.search_handler(event)
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def test_indexing_writes_every_size_that_fits_its_box_as_the_local_server_makes_it(
    function_environment, bucket, demo_photos, tmp_path
):
    photo = demo_photos[0].read_bytes()
    bucket.put_object(Bucket=BUCKET, Key="shoes/a.jpg", Body=photo)
    assert index(s3_event(BUCKET, "shoes/a.jpg", created=True, sequencer="01")) == {"batchItemFailures": []}
    assert keys_under(bucket, "thumbnails/") == sorted(thumbnail_key("shoes/a.jpg", size) for size in THUMBNAIL_SIZES)
    assert indexed("shoes/a.jpg")["shoes/a.jpg"].attributes[THUMBNAILS_ATTRIBUTE] == "1"
    local = ThumbnailCache(tmp_path / "cache")
    for size in THUMBNAIL_SIZES:
        stored = bucket.get_object(Bucket=BUCKET, Key=thumbnail_key("shoes/a.jpg", size))
        assert stored["ContentType"] == "image/jpeg"
        image = Image.open(io.BytesIO(stored["Body"].read()))
        assert image.format == "JPEG" and max(image.size) <= size
        assert image.size == Image.open(local.thumbnail(photo, size)).size, "not the local server's size"


def test_result_cards_get_a_presigned_thumbnail_and_an_image_without_them_its_original(
    function_environment, bucket, demo_photos
):
    bucket.put_object(Bucket=BUCKET, Key="a.jpg", Body=demo_photos[0].read_bytes())
    assert index(s3_event(BUCKET, "a.jpg", created=True, sequencer="01")) == {"batchItemFailures": []}
    result = search(demo_photos[0].read_bytes())["results"][0]
    url = urlsplit(result["url"])
    assert result["key"] == "a.jpg" and unquote(url.path) == "/" + thumbnail_key("a.jpg", RESULT_CARD_PX)
    assert "X-Amz-Signature=" in url.query and url.hostname.startswith(BUCKET)
    thumbnail = bucket.get_object(Bucket=BUCKET, Key=thumbnail_key("a.jpg", RESULT_CARD_PX))["Body"].read()
    assert len(thumbnail) < len(demo_photos[0].read_bytes())

    # An image indexed before thumbnails existed (no attribute) is served as its original.
    index_store = handlers._event_indexer.get().indexer.index
    record = index_store.get(["a.jpg"])["a.jpg"]
    record.attributes.pop(THUMBNAILS_ATTRIBUTE)
    vector = index_store.get_vector("a.jpg")
    index_store.inner.upsert([record], vector[None, :])
    handlers._search_runtime.reset()
    assert unquote(urlsplit(search(demo_photos[0].read_bytes())["results"][0]["url"]).path) == "/a.jpg"


def test_removing_the_image_removes_its_thumbnails(function_environment, bucket, demo_photos):
    for key in ("a.jpg", "b.jpg"):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=demo_photos[0].read_bytes())
    index(*[s3_event(BUCKET, key, created=True, sequencer="01") for key in ("a.jpg", "b.jpg")])
    bucket.delete_object(Bucket=BUCKET, Key="a.jpg")
    assert index(s3_event(BUCKET, "a.jpg", created=False, sequencer="02")) == {"batchItemFailures": []}
    assert keys_under(bucket, "thumbnails/") == sorted(thumbnail_key("b.jpg", size) for size in THUMBNAIL_SIZES)


def test_a_thumbnail_that_cannot_be_written_never_fails_the_image(function_environment, bucket, demo_photos, caplog):
    bucket.put_object(Bucket=BUCKET, Key="a.jpg", Body=demo_photos[0].read_bytes())
    index(s3_event(BUCKET, "a.jpg", created=True, sequencer="01"))  # builds the services, with thumbnails
    thumbnails = handlers._event_indexer.get().indexer.thumbnails

    def refuse(**_kwargs):
        raise RuntimeError("AccessDenied")

    thumbnails.client_for_bucket = lambda _bucket: type("Refusing", (), {"put_object": staticmethod(refuse)})()
    assert index(s3_event(BUCKET, "a.jpg", created=True, sequencer="02")) == {"batchItemFailures": []}
    record = indexed("a.jpg")["a.jpg"]
    assert record.attributes[THUMBNAILS_ATTRIBUTE] == "0", "a re-upload must not keep the old image's thumbnails"
    assert "thumbnails of s3://" in caplog.text


@pytest.mark.parametrize("key", ["thumbnails/800/a.jpg.jpg", "shared-uploads/query.jpg"])
def test_what_the_stack_writes_into_the_bucket_is_never_indexed(function_environment, bucket, demo_photos, key):
    """With ImagesPrefix empty every object's events reach the queue, the thumbnails and shared uploads too."""
    bucket.put_object(Bucket=BUCKET, Key=key, Body=demo_photos[0].read_bytes())
    response, _failed = handlers.handle_index_event(
        {"Records": [s3_event(BUCKET, key, created=True, sequencer="01")]}, handlers._event_indexer.get()
    )
    assert response["ignored"] == [key] and response["indexed"] == []
