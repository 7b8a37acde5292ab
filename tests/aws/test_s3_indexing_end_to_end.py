"""S3 -> SQS -> index handler -> search handler, in-process: moto for S3, the embedding endpoint on loopback, the
embedded index. Photos uploaded to a bucket come back from a search with presigned URLs; failures are reported
per message; duplicate and out-of-order events converge."""

from __future__ import annotations

import base64
import itertools
import json
import logging
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from aws_fixtures import BUCKET, REGION, s3_event, sqs_batch

from visual_search.aws import handlers
from visual_search.aws.handlers import handle_index_event
from visual_search.bootstrap.aws_runtime import build_event_indexer_runtime
from visual_search.core.settings import Settings
from visual_search.stores.s3 import S3ImageStore


@pytest.fixture
def lambda_env(function_environment):
    function_environment(VISUAL_SEARCH_PRESIGNED_URL_EXPIRY_S="120")


def upload(s3, key: str, data: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)


def search_event(body: dict) -> dict:
    from aws_fixtures import load_event

    event = load_event("search-key.json")
    event["body"] = json.dumps(body)
    return event


def test_uploaded_photos_are_indexed_from_sqs_and_found_with_presigned_urls(lambda_env, bucket, demo_photos):
    keys = [f"catalogue/summer sale/{photo.name}" for photo in demo_photos]
    for key, photo in zip(keys, demo_photos):
        upload(bucket, key, photo.read_bytes())
    event = sqs_batch(*[[s3_event(BUCKET, key, created=True, sequencer=f"00AA{n:04X}")] for n, key in enumerate(keys)])

    assert handlers.index_handler(event, None) == {"batchItemFailures": []}

    upload_event = search_event({})
    upload_event.update(body=base64.b64encode(demo_photos[2].read_bytes()).decode(), isBase64Encoded=True)
    upload_event["headers"]["content-type"] = "image/jpeg"
    response = handlers.search_handler(upload_event, None)
    assert response["statusCode"] == 200, response["body"]
    results = json.loads(response["body"])["results"]
    assert results[0]["key"] == keys[2] and results[0]["score"] > 0.999
    assert {result["key"] for result in results} == set(keys)
    link = urlparse(results[0]["url"])
    assert BUCKET in link.netloc + link.path and "X-Amz-Signature" in link.query
    assert parse_qs(link.query)["X-Amz-Expires"] == ["120"]


def test_image_route_redirects_to_a_presigned_url_of_an_indexed_key(lambda_env, bucket, demo_photos):
    from aws_fixtures import load_event

    upload(bucket, "a b.jpg", demo_photos[0].read_bytes())
    handlers.index_handler({"Records": [s3_event(BUCKET, "a b.jpg", created=True, sequencer="01")]}, None)
    event = load_event("image-redirect.json")
    event["pathParameters"] = {"key": "a b.jpg"}
    response = handlers.search_handler(event, None)
    assert response["statusCode"] == 302
    assert "X-Amz-Signature" in response["headers"]["location"]
    event["pathParameters"] = {"key": "not-indexed.jpg"}
    assert handlers.search_handler(event, None)["statusCode"] == 404


def test_corrupt_object_is_logged_and_reported_while_the_rest_is_indexed(lambda_env, bucket, demo_photos, caplog):
    upload(bucket, "good.jpg", demo_photos[0].read_bytes())
    upload(bucket, "broken.jpg", demo_photos[1].read_bytes()[:300])
    event = sqs_batch(
        [s3_event(BUCKET, "good.jpg", created=True, sequencer="10")],
        [s3_event(BUCKET, "broken.jpg", created=True, sequencer="11")],
    )
    with caplog.at_level(logging.ERROR):
        response = handlers.index_handler(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
    assert "broken.jpg" in caplog.text
    index = handlers._event_indexer.get().indexer.index
    assert set(index.get(["good.jpg", "broken.jpg"])) == {"good.jpg"}


def test_throttling_is_retried_then_the_message_is_reported_for_the_dead_letter_queue(
    lambda_env, bucket, demo_photos, loopback_endpoint, monkeypatch
):
    monkeypatch.setattr("visual_search.embedders.sagemaker.client.time.sleep", lambda seconds: None)
    upload(bucket, "a.jpg", demo_photos[0].read_bytes())
    handlers.index_handler({"Records": []}, None)  # builds the services (describe call) before throttling starts
    embedder = handlers._event_indexer.get().indexer.indexing.embedder
    embedder._sleep = lambda seconds: None

    loopback_endpoint.throttle_next = 2  # fewer than max_attempts: retried and indexed
    assert handlers.index_handler(sqs_batch([s3_event(BUCKET, "a.jpg", created=True, sequencer="20")]), None) == {
        "batchItemFailures": []
    }
    loopback_endpoint.throttle_next = 100  # never recovers: reported, so SQS redelivers and then dead-letters it
    before = len(loopback_endpoint.requests)
    response = handlers.index_handler(sqs_batch([s3_event(BUCKET, "a.jpg", created=True, sequencer="21")]), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert len(loopback_endpoint.requests) - before == embedder.max_attempts


def test_failed_message_lands_in_the_dead_letter_queue_after_max_receives(
    lambda_env, bucket, demo_photos, loopback_endpoint
):
    """The queue wiring of template.yaml (redrive after maxReceiveCount) with the handler's failure report."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="index-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName="index",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]
    upload(bucket, "broken.jpg", b"not an image at all")
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"Records": [s3_event(BUCKET, "broken.jpg", created=True, sequencer="30")]}),
    )
    for _ in range(3):  # what Lambda's poller does: receive, invoke, delete only what succeeded
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        event = {
            "Records": [{"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"} for m in messages]
        }
        failed = {f["itemIdentifier"] for f in handlers.index_handler(event, None)["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(dead) == 1 and "broken.jpg" in dead[0]["Body"]


def test_object_removed_deletes_and_non_image_keys_are_ignored(lambda_env, bucket, demo_photos):
    upload(bucket, "shoe.jpg", demo_photos[0].read_bytes())
    upload(bucket, "notes.txt", b"hello")
    handlers.index_handler(
        sqs_batch(
            [
                s3_event(BUCKET, "shoe.jpg", created=True, sequencer="40"),
                s3_event(BUCKET, "notes.txt", created=True, sequencer="41"),
            ]
        ),
        None,
    )
    index = handlers._event_indexer.get().indexer.index
    assert index.count() == 1
    bucket.delete_object(Bucket=BUCKET, Key="shoe.jpg")
    assert handlers.index_handler(sqs_batch([s3_event(BUCKET, "shoe.jpg", created=False, sequencer="42")]), None) == {
        "batchItemFailures": []
    }
    assert index.count() == 0


def _final_state_after(order, events, s3, indexer_factory):
    indexer = indexer_factory()
    for step in order:
        response, failed = handle_index_event(sqs_batch([events[step]]), indexer)
        assert not failed, response
    return indexer.indexer.index.get(["item.jpg"]).get("item.jpg")


@pytest.mark.parametrize("final_put", [True, False], ids=["put-delete-put", "put-put-delete"])
def test_every_delivery_order_of_three_events_converges_to_the_bucket_state(
    final_put, moto_aws, bucket, demo_photos, loopback_endpoint, tmp_path
):
    """The bucket's history for one key is applied in full, then each of the 6 orders of its 3 events (plus a
    redelivered duplicate) is applied to a fresh index: all end as the bucket is."""
    first, last = demo_photos[0].read_bytes(), demo_photos[1].read_bytes()
    if final_put:
        events = [
            s3_event(BUCKET, "item.jpg", created=True, sequencer="0A01"),
            s3_event(BUCKET, "item.jpg", created=False, sequencer="0A02"),
            s3_event(BUCKET, "item.jpg", created=True, sequencer="0A03"),
        ]
        upload(bucket, "item.jpg", last)
    else:
        events = [
            s3_event(BUCKET, "item.jpg", created=True, sequencer="0A01"),
            s3_event(BUCKET, "item.jpg", created=True, sequencer="0A02"),
            s3_event(BUCKET, "item.jpg", created=False, sequencer="0A03"),
        ]
    settings = Settings(embedder="sagemaker", sagemaker_endpoint="embedding-endpoint")
    from visual_search.core.hashing import sha256_hex

    for number, order in enumerate(itertools.permutations(range(3))):

        def factory(number=number):
            local = settings.with_overrides(index=str(tmp_path / f"index-{number}"))
            import os

            os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = loopback_endpoint.url
            return build_event_indexer_runtime(local, store_for_bucket=lambda name: S3ImageStore(name))

        record = _final_state_after(list(order) + [order[0]], events, bucket, factory)
        if final_put:
            assert record is not None and record.content_hash == sha256_hex(last), order
            assert record.attributes["s3_sequencer"] == "0A03"
        else:
            assert record is None, order
    assert first != last
