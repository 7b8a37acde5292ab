"""SageMaker inference handlers for the embedding endpoint, thin over the visual_search core library.

Runs in SageMaker's PyTorch inference container (see docs/DEPLOY.md); the archive's code/ folder holds this file,
lib/ (onnxruntime and its dependencies, unpacked from pinned wheels) and a copy of the visual_search package made
at build time from src/. The wire format is visual_search.embedders.sagemaker.protocol: application/x-image or
JSON {"image": base64} in, {"predictions": [[...]], "model_id": ...} out.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

# onnxruntime and its dependencies, unpacked into the archive at build time: nothing is installed at start.
_BUNDLED = Path(__file__).resolve().parent / "lib"
if _BUNDLED.is_dir() and str(_BUNDLED) not in sys.path:
    sys.path.insert(0, str(_BUNDLED))

import numpy as np

from visual_search.core.errors import UnsupportedImageTypeError
from visual_search.core.settings import Settings
from visual_search.embedders.onnx.endpoint_archive import load_endpoint_embedder
from visual_search.embedders.sagemaker import protocol as protocol

# model_fn runs once per worker before any request; input_fn and output_fn receive no model, so they read it here.
_served = {}


def model_fn(model_dir):
    embedder = load_endpoint_embedder(model_dir, intra_op_threads=Settings.from_env().threads)
    _served["embedder"] = embedder
    return embedder


def _answers_errors_as_json(handler):
    """Every failure leaves as the API's one error shape ({"error": {"code", "message"}}, see
    protocol.error_response) with its status, never as the container's traceback text."""

    @functools.wraps(handler)
    def wrapped(*args):
        try:
            return handler(*args)
        except Exception as exc:  # noqa: BLE001 - the endpoint boundary
            raise _toolkit_error(exc) from None

    return wrapped


@_answers_errors_as_json
def input_fn(request_body, request_content_type):
    """Decoded RGB images (list) or a DescribeRequest."""
    return protocol.decode_request(request_body, request_content_type, spec=_served["embedder"].spec)


@_answers_errors_as_json
def predict_fn(input_object, model):
    if isinstance(input_object, protocol.DescribeRequest):
        return protocol.DescribeRequest()
    return model.embed(input_object)


@_answers_errors_as_json
def output_fn(prediction, accept):
    accept = (accept or "application/json").split(";")[0].strip().lower()
    if accept not in ("application/json", "*/*"):
        raise UnsupportedImageTypeError(f"the endpoint answers application/json, not {accept}")
    embedder = _served["embedder"]
    if isinstance(prediction, protocol.DescribeRequest):
        return protocol.encode_description(embedder)
    return protocol.encode_response(np.asarray(prediction), embedder.model_id)


def _toolkit_error(exc: BaseException) -> Exception:
    """The container toolkit answers its own error type with the given status and body (400, 413, 415, 500)."""
    status, body = protocol.error_response(exc)
    try:
        from sagemaker_inference.errors import GenericInferenceToolkitError
    except ImportError:  # in-process tests, or a container without the toolkit
        return exc
    return GenericInferenceToolkitError(status, body.decode())
