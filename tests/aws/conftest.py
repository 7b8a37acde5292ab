"""Fixtures for the AWS path: moto for S3 and SQS, a SageMaker-compatible endpoint on loopback, demo photos."""

from __future__ import annotations

from pathlib import Path


import pytest

from aws_fixtures import DEMO_IMAGES, REGION, LoopbackEndpoint
from fakes import ColourGridEmbedder


@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials and a region, so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
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
    from visual_search.embedders.onnx.registry import builtin_spec

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


