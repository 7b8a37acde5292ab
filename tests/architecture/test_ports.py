"""Every adapter and decorator implements its whole port, by name and signature, so a method added to a port
cannot be forgotten by one backend (a __getattr__ pass-through would hide that)."""

from __future__ import annotations

import inspect

import pytest

from visual_search.core.ports import (
    AdaptableIndex,
    Embedder,
    ImageStore,
    QueryAccumulator,
    TensorEmbedder,
    VectorIndex,
)
from visual_search.embedders.onnx.embedder import OnnxEmbedder
from visual_search.embedders.sagemaker.client import SageMakerEmbedder
from visual_search.indexes.local.index import LocalIndex
from visual_search.indexes.opensearch.index import OpenSearchIndex
from visual_search.indexes.opensearch.query_sums import OpenSearchQueryAccumulator
from visual_search.services.query_accumulator import InMemoryQueryAccumulator
from visual_search.services.sequenced_index import SequencedIndex
from visual_search.stores.local_folder import LocalFolderStore
from visual_search.stores.s3 import S3ImageStore


def _methods(cls) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _parameter_names(signature: inspect.Signature) -> list[str]:
    return [name for name in signature.parameters if name != "self"]


@pytest.mark.parametrize(
    "port, adapter",
    [
        (VectorIndex, LocalIndex),
        (VectorIndex, OpenSearchIndex),
        (VectorIndex, SequencedIndex),
        (AdaptableIndex, LocalIndex),
        (AdaptableIndex, OpenSearchIndex),
        (ImageStore, LocalFolderStore),
        (ImageStore, S3ImageStore),
        (QueryAccumulator, InMemoryQueryAccumulator),
        (QueryAccumulator, OpenSearchQueryAccumulator),
    ],
)
def test_the_adapter_implements_every_method_of_its_port(port, adapter):
    implemented = _methods(adapter)
    for name, signature in _methods(port).items():
        assert name in implemented, f"{adapter.__name__} lacks {port.__name__}.{name}"
        assert _parameter_names(implemented[name])[: len(_parameter_names(signature))] == _parameter_names(signature), (
            f"{adapter.__name__}.{name}{implemented[name]} does not match {port.__name__}.{name}{signature}"
        )


def test_sequenced_index_forwards_nothing_implicitly():
    assert "__getattr__" not in vars(SequencedIndex)


def test_only_the_in_process_model_takes_tensors():
    onnx = object.__new__(OnnxEmbedder)  # the protocol check needs the attributes, not a loaded model
    onnx.model_id, onnx.dimension, onnx.spec = "m", 3, None
    assert isinstance(onnx, TensorEmbedder)
    assert isinstance(SageMakerEmbedder("endpoint", model_id="m", dimension=3), Embedder)
    assert not isinstance(SageMakerEmbedder("endpoint", model_id="m", dimension=3), TensorEmbedder)
