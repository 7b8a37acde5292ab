"""The embedding endpoint's wire format, shared by the SageMaker inference script, the local server's
`POST /endpoints/{name}/invocations` route and the SageMakerEmbedder client, so all three agree byte for byte.

Requests:
- `application/x-image`: one image file (any format `decode_image` reads); the client sends lossless PNG.
- `application/json`: `{"image": "<base64>"}` or `{"images": ["<base64>", ...]}`; a data URL is accepted.
  `{"describe": true}` asks what model the endpoint serves instead.
Responses (`application/json`): `{"predictions": [[float, ...], ...], "model_id": "..."}`, one unit-length row
per image in request order; a describe answers `{"model_id", "dimension", "spec": {...}}`.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from visual_search.core.errors import ImageTooLargeError, InvalidRequestError, UnsupportedImageTypeError, error_for
from visual_search.core.images import DEFAULT_MAX_PIXELS, PreprocessSpec, decode_image
from visual_search.core.ports import Embedder
from visual_search.core.wire import decode_base64_image, json_object

IMAGE_CONTENT_TYPE = "application/x-image"
JSON_CONTENT_TYPE = "application/json"
MAX_IMAGES_PER_REQUEST = 64
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # per image, encoded; SageMaker itself caps a request at 6 MB


@dataclass(frozen=True)
class DescribeRequest:
    """A request for the served model's identity rather than for vectors."""


@dataclass(frozen=True)
class EndpointDescription:
    model_id: str
    dimension: int
    spec: PreprocessSpec


def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG of an RGB image: the endpoint decodes exactly these pixels. Level 1 trades size for speed."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_images_request(images: Sequence[Image.Image]) -> tuple[bytes, str]:
    """(body, content type) for embedding `images`: a raw PNG for one image, a JSON batch for several."""
    return encode_png_request([png_bytes(image) for image in images])


def encode_png_request(pngs: Sequence[bytes]) -> tuple[bytes, str]:
    """As encode_images_request, for images already encoded with `png_bytes`."""
    if len(pngs) == 1:
        return pngs[0], IMAGE_CONTENT_TYPE
    encoded = [base64.b64encode(png).decode("ascii") for png in pngs]
    return json.dumps({"images": encoded}).encode("utf-8"), JSON_CONTENT_TYPE


def encode_describe_request() -> tuple[bytes, str]:
    return b'{"describe": true}', JSON_CONTENT_TYPE


def decode_request(
    body, content_type: str | None, *, spec: PreprocessSpec, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[Image.Image] | DescribeRequest:
    """Decoded RGB images (as `decode_image(min_size_px=spec.size_px)` makes them) or a DescribeRequest.

    `body` may be bytes, str, or a JSON value already parsed (TorchServe parses JSON bodies itself).
    Raises UnsupportedImageTypeError for another content type, InvalidRequestError for a malformed body, and
    decode_image's errors for a bad image.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == IMAGE_CONTENT_TYPE or kind.startswith("image/"):
        return [decode_image(_as_bytes(body), min_size_px=spec.size_px, max_pixels=max_pixels).image]
    if kind != JSON_CONTENT_TYPE:
        raise UnsupportedImageTypeError(
            f"the endpoint reads {IMAGE_CONTENT_TYPE} or {JSON_CONTENT_TYPE}, not {kind or 'no content type'}"
        )
    payload = body if isinstance(body, (dict, list)) else json_object(_as_bytes(body))
    if not isinstance(payload, dict):
        raise InvalidRequestError('the JSON body must be an object: {"image": "<base64>"}')
    if payload.get("describe") is True:
        return DescribeRequest()
    if "image" in payload:
        encoded = [payload["image"]]
    elif isinstance(payload.get("images"), list):
        encoded = payload["images"]
    else:
        raise InvalidRequestError('the JSON body needs "image" (a base64 string) or "images" (a list of them)')
    if not 1 <= len(encoded) <= MAX_IMAGES_PER_REQUEST:
        raise InvalidRequestError(f"send 1 to {MAX_IMAGES_PER_REQUEST} images per request, not {len(encoded)}")
    images, decoded_pixels = [], 0
    for text in encoded:
        if not isinstance(text, str):
            raise InvalidRequestError("each image must be a base64 string")
        image = decode_image(
            decode_base64_image(text, MAX_IMAGE_BYTES), min_size_px=spec.size_px, max_pixels=max_pixels
        ).image
        # The pixel limit holds for the whole request, so a batch cannot multiply the memory one image may take.
        decoded_pixels += image.width * image.height
        if decoded_pixels > max_pixels:
            raise ImageTooLargeError(f"the images of one request decode to over {max_pixels:,} pixels")
        images.append(image)
    return images


def encode_response(vectors: np.ndarray, model_id: str) -> bytes:
    """JSON predictions; float32 values are written with repr precision, so the client gets them back exactly."""
    rows = np.asarray(vectors, dtype=np.float32)
    return json.dumps({"predictions": rows.tolist(), "model_id": model_id}).encode("utf-8")


def encode_description(embedder: Embedder) -> bytes:
    spec = asdict(embedder.spec)
    return json.dumps({"model_id": embedder.model_id, "dimension": embedder.dimension, "spec": spec}).encode()


def decode_response(body: bytes, expected_rows: int) -> tuple[np.ndarray, str | None]:
    """(float32 array (expected_rows, dimension), the model_id the endpoint reported or None)."""
    payload = json_object(body)
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if not isinstance(predictions, list) or len(predictions) != expected_rows:
        raise InvalidRequestError(f"the endpoint's answer has no {expected_rows} predictions")
    return np.asarray(predictions, dtype=np.float32), payload.get("model_id")


def decode_description(body: bytes) -> EndpointDescription:
    payload = json_object(body)
    try:
        spec = payload["spec"]
        return EndpointDescription(
            model_id=str(payload["model_id"]),
            dimension=int(payload["dimension"]),
            spec=PreprocessSpec.from_dict(spec),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(f"the endpoint's description is malformed ({exc})") from None


def invoke(embedder: Embedder, body, content_type: str | None, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """One endpoint invocation: decode, embed, encode. Raises the library's errors (see `error_response`)."""
    request = decode_request(body, content_type, spec=embedder.spec, max_pixels=max_pixels)
    if isinstance(request, DescribeRequest):
        return encode_description(embedder)
    return encode_response(embedder.embed(request), embedder.model_id)


def error_response(exc: BaseException) -> tuple[int, bytes]:
    """(status, JSON body) as a model server answers a failed invocation: the API's one error shape."""
    status, body = error_for(exc)
    return status, json.dumps(body).encode()


def _as_bytes(body) -> bytes:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    raise InvalidRequestError(f"cannot read a request body of type {type(body).__name__}")
