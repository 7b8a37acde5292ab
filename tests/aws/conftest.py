"""Fixtures for the AWS path: moto for S3 and SQS, a SageMaker-compatible endpoint on loopback, demo photos."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from aws_fixtures import BUCKET, DEMO_IMAGES, REGION, LoopbackEndpoint
from fakes import ColourGridEmbedder


@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials and a region, so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto_aws(aws_env):
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def colour_embedder() -> ColourGridEmbedder:
    """The endpoint's model, preprocessing as the default built-in model does: the SageMaker client checks that
    the endpoint decodes as the model it is configured for (VISUAL_SEARCH_MODEL) and refuses a mismatch."""
    from visual_search.core.settings import Settings
    from visual_search.embedders.onnx.resolver import builtin_spec

    embedder = ColourGridEmbedder()
    embedder.spec = builtin_spec(Settings().model)
    return embedder


@pytest.fixture
def loopback_endpoint(colour_embedder):
    with LoopbackEndpoint(colour_embedder) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def demo_photos() -> list[Path]:
    photos = sorted(DEMO_IMAGES.glob("*.jpg"))[:6]
    assert len(photos) == 6, f"the demo catalogue is missing from {DEMO_IMAGES}"
    return photos


@pytest.fixture
def bucket(moto_aws):
    """The images bucket (moto), as an S3 client."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def function_environment(monkeypatch, tmp_path, loopback_endpoint, bucket):
    """The functions' environment as template.yaml sets it (the index in a folder, SageMaker on loopback); the
    yielded `more(**variables)` adds a test's own settings. Cached services are dropped before and after."""
    from visual_search.aws import handlers

    def more(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    more(
        VISUAL_SEARCH_INDEX=str(tmp_path / "index"),
        VISUAL_SEARCH_EMBEDDER="sagemaker",
        VISUAL_SEARCH_SAGEMAKER_ENDPOINT="embedding-endpoint",
        VISUAL_SEARCH_IMAGE_STORE=f"s3://{BUCKET}",
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=loopback_endpoint.url,
    )
    handlers.reset_cached_services()
    yield more
    handlers.reset_cached_services()
