"""S3ImageStore against moto, S3/SQS event parsing, and the SageMaker client's batching and error mapping."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_fixtures import REGION, s3_event, sqs_batch
from PIL import Image

from visual_search.aws.s3_events import parse_event
from visual_search.core.errors import BackendUnavailableError, InvalidRequestError, NotFoundError
from visual_search.core.object_events import is_later
from visual_search.embedders.sagemaker.client import SageMakerEmbedder
from visual_search.stores.s3 import S3ImageStore


def test_s3_store_lists_image_keys_across_pages_and_reads_them(moto_aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="shop")
    for number in range(1105):  # more than one 1000-key page
        s3.put_object(Bucket="shop", Key=f"cat/{number:04d}.JPG", Body=b"x")
    s3.put_object(Bucket="shop", Key="cat/readme.txt", Body=b"x")
    s3.put_object(Bucket="shop", Key="other/a.png", Body=b"png")
    store = S3ImageStore.from_url("s3://shop/cat/")
    keys = list(store.list_keys())
    assert len(keys) == 1105 and keys == sorted(keys) and keys[0] == "cat/0000.JPG"
    assert S3ImageStore("shop").read("other/a.png") == b"png"
    assert store.uri("cat/0001.JPG") == "s3://shop/cat/0001.JPG"
    with pytest.raises(NotFoundError):
        store.read("cat/missing.jpg")
    with pytest.raises(InvalidRequestError):
        S3ImageStore.from_url("/not/s3")


def test_sequencers_compare_as_left_padded_hex():
    assert is_later("0055AEA9C1B7E2E1E1", "0055AEA9C1B7E2E1E0")
    assert is_later("10", "F")  # different lengths: padded, not compared as text
    assert not is_later("00A", "A") and is_later("1", None)


def test_sqs_batches_are_read_and_unreadable_messages_reported():
    event = sqs_batch([s3_event("b", "a b+c.jpg", created=True, sequencer="01")], [])
    event["Records"].append(dict(event["Records"][0], messageId="garbled", body="not json"))
    event["Records"].append(
        dict(
            event["Records"][0],
            messageId="test-event",
            body=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
        )
    )
    parsed = parse_event(event)
    assert parsed.from_sqs and parsed.unreadable_message_ids == ["garbled"]
    assert [(o.key, o.created, o.message_id) for o in parsed.objects] == [
        ("a b+c.jpg", True, "message-0")
    ]  # '+' sent as %2B


def test_embedder_batches_under_the_payload_limit_and_does_not_retry_a_model_rejection(loopback_endpoint, aws_env):
    embedder = SageMakerEmbedder(
        "e",
        endpoint_url=loopback_endpoint.url,
        region_name=REGION,
        spec=loopback_endpoint.embedder.spec,
        max_request_bytes=60_000,
        sleep=lambda s: None,
    )
    noisy = [Image.effect_noise((150, 150), 60 + n).convert("RGB") for n in range(4)]  # ~25-70 kB PNGs each
    before = len(loopback_endpoint.requests)
    assert embedder.embed(noisy).shape == (4, embedder.dimension)
    assert len(loopback_endpoint.requests) - before > 2  # split into several requests

    client = embedder.client
    with pytest.raises(Exception) as raised:
        client.invoke_endpoint(EndpointName="e", Body=b"junk", ContentType="application/x-image")
    from visual_search.embedders.sagemaker.client import classify_failure

    retryable, reason = classify_failure(raised.value)
    assert not retryable and "400" in reason  # the model refused the image: retrying cannot help
    loopback_endpoint.throttle_next = 1
    assert classify_failure(_throttled(client))[0] is True


def _throttled(client):
    try:
        client.invoke_endpoint(EndpointName="e", Body=b"x", ContentType="application/x-image")
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError("the endpoint did not throttle")


def test_unreachable_endpoint_becomes_backend_unavailable(aws_env):
    embedder = SageMakerEmbedder(
        "e",
        endpoint_url="http://127.0.0.1:9",
        region_name=REGION,
        model_id="m",
        dimension=3,
        max_attempts=2,
        sleep=lambda s: None,
    )
    with pytest.raises(BackendUnavailableError):
        embedder.embed([Image.new("RGB", (10, 10))])
