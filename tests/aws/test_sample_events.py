"""Every sample event in events/ through its handler in-process with `invoke_local`, the offline twin of
`sam local invoke`: a folder plays the bucket, the embedded index stores vectors, the endpoint is on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from aws_fixtures import DEMO_IMAGES, EVENTS_DIR, load_event

from visual_search.aws.local_invoke import invoke_local
from visual_search.core.settings import Settings

EVENT_KEYS = ("images/00588f87.jpg", "images/0090ca2c.jpg")


@pytest.fixture
def settings(tmp_path, monkeypatch, loopback_endpoint, aws_env) -> Settings:
    bucket = tmp_path / "bucket"
    (bucket / "images").mkdir(parents=True)
    for name in sorted(os.listdir(DEMO_IMAGES))[:8] + [Path(key).name for key in EVENT_KEYS]:
        shutil.copyfile(DEMO_IMAGES / name, bucket / "images" / name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", loopback_endpoint.url)
    return Settings(
        index=str(tmp_path / "index"),
        embedder="sagemaker",
        sagemaker_endpoint="embedding-endpoint",
        image_store=str(bucket),
    )


def body(response: dict) -> dict:
    return json.loads(response["body"])


def test_every_sample_event_through_its_handler(settings):
    assert invoke_local("index", load_event("s3-put.json"), settings)["indexed"] == [EVENT_KEYS[0]]
    assert invoke_local("index", load_event("sqs-s3-events.json"), settings) == {"batchItemFailures": []}

    upload = invoke_local("search", load_event("search-upload.json"), settings)
    assert upload["statusCode"] == 200 and body(upload)["results"][0]["key"] == EVENT_KEYS[0]
    by_key = invoke_local("search", load_event("search-key.json"), settings)
    assert by_key["statusCode"] == 200 and [r["key"] for r in body(by_key)["results"]] == [EVENT_KEYS[1]]
    by_url = invoke_local("search", load_event("search-url.json"), settings)  # no network here: a documented error
    assert by_url["statusCode"] in (400, 502, 504)
    assert body(by_url)["error"]["code"] in ("url_refused", "fetch_failed", "fetch_timeout")
    redirect = invoke_local("search", load_event("image-redirect.json"), settings)
    assert redirect["statusCode"] == 302 and redirect["headers"]["location"] == "/images/" + EVENT_KEYS[0]
    assert invoke_local("search", load_event("health.json"), settings)["statusCode"] == 200

    # The object is still in the bucket: the delete event is older than its current state and keeps it.
    assert invoke_local("index", load_event("s3-delete.json"), settings)["kept"] == [EVENT_KEYS[0]]
    (Path(settings.image_store) / EVENT_KEYS[0]).unlink()
    assert invoke_local("index", load_event("s3-delete.json"), settings)["deleted"] == [EVENT_KEYS[0]]
    gone = invoke_local("search", load_event("image-redirect.json"), settings)
    assert gone["statusCode"] == 404


def test_s3_keys_are_url_decoded(settings):
    event = load_event("s3-put.json")
    shutil.copyfile(DEMO_IMAGES / Path(EVENT_KEYS[0]).name, Path(settings.image_store) / "summer dress (1).jpg")
    event["Records"][0]["s3"]["object"]["key"] = "summer+dress+%281%29.jpg"
    assert invoke_local("index", event, settings)["indexed"] == ["summer dress (1).jpg"]


def _sam():
    from test_template import _sam_cli

    return _sam_cli()


@pytest.mark.parametrize(
    "name, generator",
    [
        ("search-upload.json", ["apigateway", "http-api-proxy"]),
        ("s3-put.json", ["s3", "put"]),
        ("s3-delete.json", ["s3", "delete"]),
        ("sqs-s3-events.json", ["sqs", "receive-message"]),
    ],
)
def test_sample_events_have_the_shape_sam_generates(name, generator):
    sam = _sam()
    if sam is None:
        pytest.skip("aws-sam-cli is not installed")
    generated = json.loads(
        subprocess.run(
            [sam, "local", "generate-event", *generator],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, SAM_CLI_TELEMETRY="0"),
        ).stdout
    )
    ours = load_event(name)

    def shape(node):
        if isinstance(node, dict):
            return {
                key: shape(value)
                for key, value in node.items()
                if key
                not in (
                    "cookies",
                    "stageVariables",
                    "authentication",
                    "authorizer",
                    "queryStringParameters",
                    "pathParameters",
                )
            }
        if isinstance(node, list):
            return [shape(node[0])] if node else []
        return type(node).__name__

    expected = shape(generated)
    if "headers" in expected:
        expected["headers"] = shape(ours)["headers"]  # header names vary per request
    assert shape(ours) == expected
    assert all(path.suffix == ".json" for path in EVENTS_DIR.iterdir())


def test_the_url_event_fetches_an_allow_listed_image_host(settings):
    """The search-url event's shape with its address pointed at a loopback image host that the settings allow."""
    from loopback_image_host import image_host

    assert invoke_local("index", load_event("s3-put.json"), settings)["indexed"] == [EVENT_KEYS[0]]
    photo = (Path(settings.image_store) / EVENT_KEYS[0]).read_bytes()
    with image_host(photo) as (port, log):
        event = load_event("search-url.json")
        event["body"] = json.dumps({**json.loads(event["body"]), "url": f"http://127.0.0.1:{port}/photo.jpg"})
        allowed = settings.with_overrides(url_allowlist=(f"127.0.0.1:{port}",))
        response = invoke_local("search", event, allowed)
    assert response["statusCode"] == 200, response["body"]
    top = body(response)["results"][0]
    assert top["key"] == EVENT_KEYS[0] and top["score"] > 0.999
    assert log.requests, "the image host was never asked"
