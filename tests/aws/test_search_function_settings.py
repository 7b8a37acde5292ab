"""The search function's settings on AWS: the API key read from SSM Parameter Store (moto), a missing setting
answered as a JSON 503 naming it, the endpoint's retry budget ending in a JSON 503 with Retry-After, and the
offline `invoke` twin asking for the API key exactly as the deployed handler does."""

from __future__ import annotations

import base64
import json
import shutil
import time

import boto3
import pytest
from aws_fixtures import REGION, load_event, s3_event
from PIL import Image

from visual_search.aws import handlers
from visual_search.aws.local_invoke import invoke_local
from visual_search.core.errors import BackendUnavailableError
from visual_search.core.settings import Settings
from visual_search.embedders.sagemaker.client import SageMakerEmbedder

PARAMETER = "/visual-search/api-key"


@pytest.fixture
def catalogue(tmp_path, demo_photos):
    """A folder standing in for the bucket, with one photo indexed by the invoke twin of the index function."""
    folder = tmp_path / "bucket"
    folder.mkdir()
    shutil.copy(demo_photos[0], folder / "shoe.jpg")
    return folder


@pytest.fixture
def search_env(monkeypatch, tmp_path, catalogue, loopback_endpoint, aws_env):
    """SearchFunction's environment as template.yaml sets it, the bucket a folder and SageMaker on loopback."""
    settings = Settings(
        index=str(tmp_path / "index"),
        embedder="sagemaker",
        sagemaker_endpoint="embedding-endpoint",
        image_store=str(catalogue),
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", loopback_endpoint.url)
    indexed = invoke_local(
        "index", {"Records": [s3_event("bucket", "shoe.jpg", created=True, sequencer="01")]}, settings
    )
    assert indexed["indexed"] == ["shoe.jpg"], indexed
    for name, value in {
        "VISUAL_SEARCH_INDEX": settings.index,
        "VISUAL_SEARCH_EMBEDDER": "sagemaker",
        "VISUAL_SEARCH_SAGEMAKER_ENDPOINT": "embedding-endpoint",
        "VISUAL_SEARCH_IMAGE_STORE": str(catalogue),
    }.items():
        monkeypatch.setenv(name, value)
    handlers.reset_cached_services()
    yield settings
    handlers.reset_cached_services()


def search_event(photo: bytes, api_key: str | None = None) -> dict:
    event = load_event("search-upload.json")
    event.update(body=base64.b64encode(photo).decode(), isBase64Encoded=True)
    event["headers"] = {"content-type": "image/jpeg", **({"x-api-key": api_key} if api_key else {})}
    return event


def answer(response: dict) -> tuple[int, dict]:
    return response["statusCode"], json.loads(response["body"] or "{}")


def test_the_api_key_is_read_from_parameter_store(search_env, monkeypatch, demo_photos):
    from moto import mock_aws

    with mock_aws():
        boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value="s3cret", Type="SecureString")
        monkeypatch.setenv("VISUAL_SEARCH_API_KEY_PARAMETER", PARAMETER)
        photo = demo_photos[0].read_bytes()
        status, body = answer(handlers.search_handler(search_event(photo)))
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        assert answer(handlers.search_handler(search_event(photo, "wrong")))[0] == 401
        status, body = answer(handlers.search_handler(search_event(photo, "s3cret")))
        assert status == 200 and body["results"][0]["key"] == "shoe.jpg"


def test_an_unreadable_key_parameter_refuses_to_serve_an_open_api(search_env, monkeypatch, demo_photos):
    from moto import mock_aws

    with mock_aws():
        monkeypatch.setenv("VISUAL_SEARCH_API_KEY_PARAMETER", "/does/not/exist")
        response = handlers.search_handler(search_event(demo_photos[0].read_bytes()))
    status, body = answer(response)
    assert (status, body["error"]["code"]) == (503, "backend_unavailable") and "/does/not/exist" in body["error"][
        "message"
    ]
    assert response["headers"]["retry-after"]


def test_a_missing_setting_is_a_json_503_naming_it(search_env, monkeypatch, demo_photos):
    monkeypatch.delenv("VISUAL_SEARCH_SAGEMAKER_ENDPOINT")
    handlers.reset_cached_services()
    status, body = answer(handlers.search_handler(search_event(demo_photos[0].read_bytes())))
    assert (status, body["error"]["code"]) == (503, "missing_setting")
    assert "VISUAL_SEARCH_SAGEMAKER_ENDPOINT" in body["error"]["message"] and "Traceback" not in json.dumps(body)
    monkeypatch.delenv("VISUAL_SEARCH_IMAGE_STORE")
    monkeypatch.setenv("VISUAL_SEARCH_SAGEMAKER_ENDPOINT", "embedding-endpoint")
    handlers.reset_cached_services()
    status, body = answer(handlers.search_handler(search_event(demo_photos[0].read_bytes())))
    assert (status, body["error"]["code"]) == (503, "missing_setting") and "VISUAL_SEARCH_IMAGE_STORE" in body["error"][
        "message"
    ]


def test_an_exhausted_endpoint_is_a_json_503_with_retry_after_within_the_budget(
    search_env, monkeypatch, loopback_endpoint, demo_photos
):
    monkeypatch.setenv("VISUAL_SEARCH_SAGEMAKER_BUDGET_S", "2")
    handlers.reset_cached_services()
    loopback_endpoint.throttle_next = 1000
    started = time.monotonic()
    response = handlers.search_handler(search_event(demo_photos[0].read_bytes()))
    assert time.monotonic() - started < 2.5  # the budget, and not the function's timeout, ended it
    status, body = answer(response)
    assert (status, body["error"]["code"]) == (503, "backend_unavailable")
    assert response["headers"]["content-type"] == "application/json" and int(response["headers"]["retry-after"]) > 0


def test_the_embedder_stops_retrying_when_the_next_attempt_would_overrun_its_budget(loopback_endpoint, aws_env):
    embedder = SageMakerEmbedder(
        "e",
        endpoint_url=loopback_endpoint.url,
        region_name=REGION,
        model_id="m",
        dimension=3,
        budget_s=2.0,
        max_attempts=50,
    )
    loopback_endpoint.throttle_next = 1000
    before = len(loopback_endpoint.requests)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        embedder.embed([Image.new("RGB", (8, 8))])
    assert time.monotonic() - started < 2.0
    assert 1 < len(loopback_endpoint.requests) - before < 50  # retried, but stopped by the budget


def test_the_invoke_twin_asks_for_the_api_key_as_the_deployed_handler_does(search_env, demo_photos):
    settings = search_env.with_overrides(api_key="s3cret")
    photo = demo_photos[0].read_bytes()
    status, body = answer(invoke_local("search", search_event(photo), settings))
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    status, body = answer(invoke_local("search", search_event(photo, "s3cret"), settings))
    assert status == 200 and body["results"][0]["key"] == "shoe.jpg"
    assert answer(invoke_local("search", load_event("health.json"), settings))[0] == 200  # /health needs no key


def test_the_invoke_twin_serves_the_catalogue_routes_with_the_folder_as_the_bucket(search_env, catalogue):
    settings = search_env.with_overrides(api_key="s3cret")
    listing = {
        "version": "2.0",
        "routeKey": "GET /items",
        "rawPath": "/items",
        "headers": {"x-api-key": "s3cret"},
        "queryStringParameters": {"limit": "5"},
        "requestContext": {"http": {"method": "GET", "path": "/items"}},
    }
    status, body = answer(invoke_local("search", listing, settings))
    assert (status, [item["key"] for item in body["items"]], body["total"]) == (200, ["shoe.jpg"], 1)
    deletion = {
        "version": "2.0",
        "routeKey": "DELETE /items/{key+}",
        "rawPath": "/items/shoe.jpg",
        "pathParameters": {"key": "shoe.jpg"},
        "headers": {"x-api-key": "s3cret"},
        "requestContext": {"http": {"method": "DELETE", "path": "/items/shoe.jpg"}},
    }
    assert answer(invoke_local("search", deletion, settings)) == (200, {"deleted": "shoe.jpg"})
    assert not (catalogue / "shoe.jpg").exists(), "the file playing the object is gone; its event removes the record"


def http_event(method: str, path: str, api_key: str | None) -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "headers": {"x-api-key": api_key} if api_key else {},
        "queryStringParameters": None,
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": "",
        "isBase64Encoded": False,
    }


def test_the_read_and_write_keys_come_from_their_own_parameters(search_env, monkeypatch, demo_photos):
    """The read key opens searching and listing; only the write key opens /duplicates and the catalogue writes,
    and it opens the reading routes too."""
    from moto import mock_aws

    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/vs/read", Value="reader", Type="SecureString")
        ssm.put_parameter(Name="/vs/write", Value="writer", Type="SecureString")
        monkeypatch.setenv("VISUAL_SEARCH_READ_API_KEY_PARAMETER", "/vs/read")
        monkeypatch.setenv("VISUAL_SEARCH_WRITE_API_KEY_PARAMETER", "/vs/write")
        photo = demo_photos[0].read_bytes()
        for key, status in ((None, 401), ("wrong", 401), ("reader", 200), ("writer", 200)):
            assert answer(handlers.search_handler(search_event(photo, key)))[0] == status, key
            assert answer(handlers.search_handler(http_event("GET", "/items", key)))[0] == status, key
        for key, status in ((None, 401), ("reader", 401), ("writer", 200)):
            assert answer(handlers.search_handler(http_event("GET", "/duplicates", key)))[0] == status, key
        status, body = answer(handlers.search_handler(http_event("DELETE", "/items/shoe.jpg", "reader")))
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        assert answer(handlers.search_handler(http_event("DELETE", "/items/shoe.jpg", "writer")))[0] == 200


def test_with_only_a_read_key_writes_stay_disabled(search_env, monkeypatch, demo_photos):
    from moto import mock_aws

    with mock_aws():
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/vs/read", Value="reader", Type="SecureString")
        monkeypatch.setenv("VISUAL_SEARCH_READ_API_KEY_PARAMETER", "/vs/read")
        for key in (None, "reader"):
            for method, path in (("DELETE", "/items/shoe.jpg"), ("GET", "/duplicates")):
                status, body = answer(handlers.search_handler(http_event(method, path, key)))
                assert (status, body["error"]["code"]) == (403, "writes_disabled"), (method, path, key)
                assert "WriteApiKeyParameterName" in body["error"]["message"]
        assert answer(handlers.search_handler(search_event(demo_photos[0].read_bytes(), "reader")))[0] == 200
