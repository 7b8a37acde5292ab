"""`sam build` and `sam local invoke` of both functions with the sample events, in the Lambda runtime, against
moto's S3 server, the in-process model behind the SageMaker route and the real OpenSearch node."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from sam_events import BUCKET, REPO_ROOT, load_event, sqs_put_event

from visual_search.bootstrap import build_embedder
from visual_search.core.images import decode_image
from visual_search.core.settings import Settings
from visual_search.indexes.opensearch.index import OpenSearchIndex
from visual_search.stores.s3_thumbnails import RESULT_CARD_PX, thumbnail_key

pytestmark = [pytest.mark.sam_local, pytest.mark.opensearch, pytest.mark.slow, pytest.mark.timeout(1800)]

FIXTURE_PHOTO = REPO_ROOT / "tests" / "fixtures" / "photos"
NEW_KEY = "uploads/sam-local-test photo.jpg"  # a key of our own, with a space (S3 events URL-encode it as '+')
SAMPLE_KEY = "images/00588f87.jpg"  # events/search-upload.json is a re-encoded copy of this catalogue photo


def a_test_photo() -> Path:
    return sorted(path for path in FIXTURE_PHOTO.iterdir() if path.suffix.lower() in (".jpg", ".jpeg"))[0]


def opened_index(sam) -> OpenSearchIndex:
    base, name = sam.index_url.rsplit("/", 1)
    return OpenSearchIndex.open_existing(f"opensearch://{base.split('://', 1)[1]}/{name}")


@pytest.fixture(scope="module")
def indexed(sam_built):
    """Puts a photo of our own into the moto bucket and invokes IndexFunction with the SQS-wrapped S3 put events
    for it and for the sample key."""
    sam_built.s3().put_object(Bucket=BUCKET, Key=NEW_KEY, Body=a_test_photo().read_bytes())
    return sam_built.invoke("IndexFunction", sqs_put_event([NEW_KEY, SAMPLE_KEY]))


def test_sam_build_builds_the_functions_and_layers_for_x86_64(sam_built):
    built = sam_built.build_dir / "template.yaml"
    text = built.read_text()
    assert "arm64" not in text and "x86_64" in text
    for part in ("IndexFunction", "SearchFunction", "CoreLayer", "DepsLayer"):
        assert (sam_built.build_dir / part).is_dir(), part
    assert (sam_built.build_dir / "CoreLayer" / "python" / "visual_search" / "aws" / "handlers.py").is_file()
    assert list((sam_built.build_dir / "DepsLayer" / "python").glob("numpy*"))
    assert "arm64" in (REPO_ROOT / "template.yaml").read_text(), "template.yaml keeps arm64 for deploys"


def test_index_function_indexes_a_put_object_with_the_in_process_models_vector(sam_built, indexed):
    assert indexed.response == {"batchItemFailures": []}, indexed.logs[-3000:]
    assert "Duration:" in indexed.report
    index = opened_index(sam_built)
    try:
        stored = index.get_vector(NEW_KEY)
        assert stored is not None, f"{NEW_KEY} is not in {sam_built.index_url}"
        embedder = build_embedder(Settings())  # the in-process ONNX model, as `visual-search serve` runs it
        expected = embedder.embed([decode_image(a_test_photo().read_bytes()).image])[0]
        assert index.stats().model_id == embedder.model_id
    finally:
        index.close()
    # The same photo through the same model: the same vector, up to rounding and decoding on the way (another
    # catalogue photo scores about 0.9 at best).
    assert stored.shape == expected.shape
    assert float(np.dot(stored, expected)) > 0.9999


def test_search_function_answers_the_upload_sample_with_the_indexed_image_on_top(sam_built, indexed):
    invocation = sam_built.invoke("SearchFunction", load_event("search-upload.json"))
    assert invocation.response["statusCode"] == 200, invocation.response
    results = json.loads(invocation.response["body"])["results"]
    assert results[0]["key"] == SAMPLE_KEY
    assert {result["key"] for result in results} <= {SAMPLE_KEY, NEW_KEY}
    # A result card gets the thumbnail IndexFunction wrote beside the photo when it indexed it, never the original.
    card_key = thumbnail_key(SAMPLE_KEY, RESULT_CARD_PX)
    url = results[0]["url"]
    assert url.startswith(f"{sam_built.s3_url_seen_by_functions}/{BUCKET}/{card_key}?"), url
    assert "X-Amz-Signature=" in url
    # The presigned URL works: the moto server hands out the very object (the bridge door serves this host too).
    with urllib.request.urlopen(url, timeout=30) as response:
        served = response.read()
    assert served == sam_built.s3().get_object(Bucket=BUCKET, Key=card_key)["Body"].read()
    assert max(decode_image(served).image.size) <= RESULT_CARD_PX


def test_a_delete_event_removes_the_document(sam_built, indexed):
    sam_built.s3().delete_object(Bucket=BUCKET, Key=SAMPLE_KEY)
    try:
        invocation = sam_built.invoke("IndexFunction", load_event("s3-delete.json"))
        assert invocation.response["deleted"] == [SAMPLE_KEY], invocation.response
        index = opened_index(sam_built)
        try:
            assert index.get_vector(SAMPLE_KEY) is None
            assert index.get_vector(NEW_KEY) is not None
        finally:
            index.close()
    finally:
        sam_built.s3().upload_file(str(REPO_ROOT / "demo" / "catalogue" / SAMPLE_KEY), BUCKET, SAMPLE_KEY)


def test_a_malformed_request_gets_the_documented_4xx_json(sam_built, indexed):
    event = load_event("search-key.json")
    event["body"] = '{"key": "images/00588f87.jpg", '
    invocation = sam_built.invoke("SearchFunction", event)
    assert invocation.response["statusCode"] == 400, invocation.response
    error = json.loads(invocation.response["body"])["error"]
    assert error["code"] and error["message"]
    assert "Traceback" not in invocation.response["body"]


def test_an_sqs_message_without_an_s3_event_is_reported_as_a_batch_item_failure(sam_built, indexed):
    event = sqs_put_event([NEW_KEY])
    event["Records"][0]["body"] = "not an S3 notification"
    invocation = sam_built.invoke("IndexFunction", event)
    assert invocation.response == {"batchItemFailures": [{"itemIdentifier": "sam-local-test-0"}]}


def test_a_missing_setting_answers_json_that_names_it(sam_built):
    env_vars = json.loads(sam_built.env_file.read_text())
    del env_vars["SearchFunction"]["VISUAL_SEARCH_SAGEMAKER_ENDPOINT"]  # the template's value is blank locally
    invocation = sam_built.invoke("SearchFunction", load_event("health.json"), env_vars=env_vars)
    body = invocation.response["body"]
    assert invocation.response["statusCode"] >= 500 and "Traceback" not in body, invocation.response
    error = json.loads(body)["error"]
    assert error["code"] and "VISUAL_SEARCH_SAGEMAKER_ENDPOINT" in error["message"]
