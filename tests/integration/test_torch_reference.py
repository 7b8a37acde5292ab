"""The torch-free ONNX port against the reference PyTorch implementation, on the real test photos.

Runs only where `torch` and `efficientnet_lite_pytorch` are importable (the `torch-reference` extra, never
installed by default or in CI, because it pulls a multi-GB build); skips otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from visual_search.core.images import decode_image, to_model_input
from visual_search.embedders.onnx.embedder import OnnxEmbedder

torch = pytest.importorskip("torch")
reference = pytest.importorskip("efficientnet_lite_pytorch")

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    from visual_search.embedders.lite2_builder.graph import LITE2_PREPROCESS

    photos = sorted(PHOTOS.glob("*.jpg"))
    assert photos, "the fixture photos are missing"
    return np.stack([to_model_input(decode_image(p.read_bytes()).image, LITE2_PREPROCESS) for p in photos])


@pytest.fixture(scope="module")
def torch_outputs(batch):
    from visual_search.embedders.lite2_builder.weights import default_weights_path

    model = reference.EfficientNet.from_pretrained("efficientnet-lite2", weights_path=str(default_weights_path()))
    model.eval()
    with torch.no_grad():
        inputs = torch.from_numpy(batch)
        features = model.extract_features(inputs).mean(dim=(2, 3))
        logits = model(inputs)
    embeddings = features / features.norm(dim=1, keepdim=True)
    return embeddings.numpy(), logits.numpy()


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory) -> OnnxEmbedder:
    return OnnxEmbedder.from_name("lite2-fp32", cache_dir=tmp_path_factory.mktemp("models"))


def test_embeddings_match_the_reference_within_1e_4(batch, torch_outputs, onnx_embedder):
    # The graph's own embedding output: embed_tensors returns it inside an [appearance | colour] signature.
    difference = np.abs(onnx_embedder.run_outputs(batch, ["embedding"])[0] - torch_outputs[0]).max()
    print(f"max abs embedding difference vs torch: {difference:.2e}")
    assert difference <= 1e-4


def test_logits_match_the_reference(batch, torch_outputs, onnx_embedder):
    session_logits = onnx_embedder._get_session().run(["logits"], {"image": batch})[0]
    difference = np.abs(session_logits - torch_outputs[1]).max()
    print(f"max abs logit difference vs torch: {difference:.2e}")
    assert difference <= 1e-3
    assert (session_logits.argmax(1) == torch_outputs[1].argmax(1)).all()
