"""Shared uploads on AWS (issue 21): the search function keeps an uploaded photo in the images bucket under
shared-uploads/<sha256>, answers its id, searches with it again, and redirects GET /shared-uploads/{key+} to a
presigned URL of it. The index function never takes a kept photo for a catalogue image. moto S3 + the loopback
endpoint + the embedded index."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlparse

import pytest
from aws_fixtures import BUCKET, s3_event, sqs_batch

from visual_search.aws import handlers


@pytest.fixture
def search_function(function_environment, bucket, demo_photos):
    for number, photo in enumerate(demo_photos[:3]):
        bucket.put_object(Bucket=BUCKET, Key=f"catalogue/{photo.name}", Body=photo.read_bytes())
        record = s3_event(BUCKET, f"catalogue/{photo.name}", created=True, sequencer=f"0{number}")
        assert handlers.index_handler(sqs_batch([record]), None) == {"batchItemFailures": []}
    return bucket


def invoke(method: str, path: str, body: dict | None = None, *, route: str = "$default", key: str | None = None):
    event = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "headers": {"content-type": "application/json"},
        "pathParameters": {"key": key} if key else None,
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": json.dumps(body) if body is not None else "",
        "isBase64Encoded": False,
    }
    response = handlers.search_handler(event)
    return response["statusCode"], response["headers"], json.loads(response["body"] or "{}")


def test_an_upload_is_kept_in_the_bucket_and_its_id_searches_again(search_function, demo_photos):
    photo = demo_photos[4].read_bytes()
    upload_id = hashlib.sha256(photo).hexdigest()
    status, _, first = invoke("POST", "/search", {"image": base64.b64encode(photo).decode(), "k": 3})
    assert status == 200 and first["upload"] == upload_id
    kept = search_function.get_object(Bucket=BUCKET, Key=f"shared-uploads/{upload_id}")["Body"].read()
    assert kept == photo
    status, _, again = invoke("POST", "/search", {"upload": upload_id, "k": 3})
    assert status == 200
    assert [r["key"] for r in again["results"]] == [r["key"] for r in first["results"]]

    status, headers, _ = invoke(
        "GET", f"/shared-uploads/{upload_id}", route="GET /shared-uploads/{key+}", key=upload_id
    )
    location = urlparse(headers["location"])
    assert status == 302 and location.path.endswith(f"/shared-uploads/{upload_id}")
    assert "X-Amz-Signature=" in location.query


def test_a_kept_photo_is_never_indexed(search_function, demo_photos):
    photo = demo_photos[5].read_bytes()
    _, _, body = invoke("POST", "/search", {"image": base64.b64encode(photo).decode()})
    key = f"shared-uploads/{body['upload']}"
    before = handlers._event_indexer.get().indexer.index.count()
    response = handlers.index_handler(sqs_batch([s3_event(BUCKET, key, created=True, sequencer="09")]), None)
    assert response == {"batchItemFailures": []}
    assert handlers._event_indexer.get().indexer.index.count() == before
    assert not handlers._event_indexer.get().indexer.index.get([key])


def test_unknown_and_malformed_ids_answer_json_errors(search_function):
    status, _, body = invoke("GET", f"/shared-uploads/{'a' * 64}", route="GET /shared-uploads/{key+}", key="a" * 64)
    assert (status, body["error"]["code"]) == (404, "upload_expired")
    status, _, body = invoke("GET", "/shared-uploads/../catalogue", route="GET /shared-uploads/{key+}", key="../x")
    assert (status, body["error"]["code"]) == (400, "invalid_upload_id")
    status, _, body = invoke("POST", "/search", {"upload": "catalogue/../x"})
    assert (status, body["error"]["code"]) == (400, "invalid_upload_id")
