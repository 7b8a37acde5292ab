"""The local server answers SageMaker's InvokeEndpoint route with the in-process model, through boto3 itself."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from fakes import HistogramEmbedder
from live_server import index_folder, serving
from PIL import Image

from visual_search.core.settings import Settings
from visual_search.embedders.sagemaker.client import SageMakerEmbedder
from visual_search.server.app import create_app

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
FIXTURE = PHOTOS / "hat.jpg"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    embedder = HistogramEmbedder()
    service = index_folder(PHOTOS, tmp_path_factory.mktemp("index"), embedder)
    with serving(create_app(Settings(index="unused"), search_service=service)) as base_url:
        yield base_url, embedder


def runtime_client(base_url: str):
    return boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url=base_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )


def test_invoke_endpoint_returns_the_in_process_models_vector(server):
    live, embedder = server
    with open(FIXTURE, "rb") as handle:
        data = handle.read()
    answer = runtime_client(live).invoke_endpoint(
        EndpointName="visual-search-embedder", ContentType="application/x-image", Body=data
    )
    predictions = np.asarray(json.loads(answer["Body"].read())["predictions"], dtype=np.float32)
    from visual_search.core.images import decode_image

    expected = embedder.embed([decode_image(data, min_size_px=embedder.spec.size_px).image])
    assert predictions.shape == (1, embedder.dimension)
    np.testing.assert_allclose(predictions, expected, atol=1e-6)


def test_the_sagemaker_embedder_client_works_against_the_local_route(server):
    live, embedder = server
    client = SageMakerEmbedder("visual-search-embedder", client=runtime_client(live))
    image = Image.open(FIXTURE).convert("RGB")
    np.testing.assert_allclose(client.embed([image, image]), embedder.embed([image, image]), atol=1e-6)


def test_a_non_image_invocation_is_a_4xx_with_a_message(server):
    live, _ = server
    with pytest.raises(Exception) as failure:
        runtime_client(live).invoke_endpoint(EndpointName="x", ContentType="application/x-image", Body=b"not an image")
    assert "400" in str(failure.value) or "invalid_image" in str(failure.value)


def test_deeply_nested_json_is_a_400_not_a_500(server):
    live, _ = server
    import httpx

    answer = httpx.post(
        f"{live}/endpoints/x/invocations", content=b"[" * 200_000, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"


def test_with_an_api_key_the_route_needs_it(tmp_path):
    import httpx

    embedder = HistogramEmbedder()
    service = index_folder(PHOTOS, tmp_path / "index", embedder)
    with serving(create_app(Settings(index="unused", api_key="s3cret"), search_service=service)) as base_url:
        url = f"{base_url}/endpoints/x/invocations"
        body = FIXTURE.read_bytes()
        assert httpx.post(url, content=body, headers={"content-type": "application/x-image"}).status_code == 401
        allowed = httpx.post(url, content=body, headers={"content-type": "application/x-image", "x-api-key": "s3cret"})
        assert allowed.status_code == 200 and len(allowed.json()["predictions"][0]) == embedder.dimension


def test_a_260_px_model_gives_the_same_vectors_through_the_route_as_in_process(tmp_path):
    """Whatever the model settings: the client decodes for the configured model's input (bootstrap reads it from
    the model name) and the endpoint gives the in-process vector, colour part included."""
    from visual_search.bootstrap import build_embedder
    from visual_search.embedders.onnx.embedder import OnnxEmbedder

    local = OnnxEmbedder.from_name("lite2-fp32@260-avg")
    service = index_folder(PHOTOS, tmp_path / "index", local)
    client_settings = Settings(
        embedder="sagemaker", sagemaker_endpoint="visual-search-embedder", model="lite2-fp32@260-avg"
    )
    assert build_embedder(client_settings).spec == local.spec
    with serving(create_app(Settings(index="unused"), search_service=service)) as base_url:
        client = SageMakerEmbedder("visual-search-embedder", client=runtime_client(base_url), spec=local.spec)
        assert client.model_id == local.model_id and client.dimension == local.dimension
        from visual_search.core.images import decode_image

        images = [
            decode_image(p.read_bytes(), min_size_px=client.spec.size_px).image
            for p in sorted(PHOTOS.glob("*.jpg"))[:3]
        ]
        np.testing.assert_allclose(client.embed(images), local.embed(images), atol=1e-6)
