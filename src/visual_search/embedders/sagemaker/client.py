"""Embedder that calls a SageMaker endpoint serving the same ONNX model, so Lambda needs no ONNX Runtime.

The caller decodes the photo (draft mode, EXIF, alpha) exactly as the local path does; this client sends those
pixels losslessly as PNG and the endpoint (model/code/inference.py, over sagemaker_protocol) runs the same
preprocessing and model, so a photo gets the same vector here as from the in-process embedder.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from visual_search.core import deadline as request_deadline
from visual_search.core.errors import BackendUnavailableError, ModelMismatchError, VisualSearchError
from visual_search.core.images import PreprocessSpec
from visual_search.core.lazy import Lazy
from visual_search.embedders.sagemaker import protocol as protocol

logger = logging.getLogger(__name__)

# What the service answers when it, or the model container behind it, is overloaded or briefly down.
_RETRYABLE_CODES = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
    "ModelNotReadyException",
}
_RETRYABLE_MODEL_STATUSES = {429, 500, 502, 503, 504}


class SageMakerEmbedder:
    """Embeds through `invoke_endpoint` on `endpoint_name`.

    `spec` is the preprocessing of the model the endpoint serves (EfficientNet-Lite2's 300 px by default); the
    indexing service decodes with `min_size_px=spec.size_px`. `model_id` and `dimension`, when not given, are
    asked of the endpoint once (a describe request) on first use. Throttling, 429 and 5xx answers are retried
    with exponential backoff and jitter, at most `max_attempts` times and only while the attempt would end within
    `budget_s` of the request's start; then BackendUnavailableError (a 503) is raised. The budget is what lets the
    caller's own deadline nest around it: the search function's timeout is under API Gateway's 30 s, and each
    request here (an attempt's connect + read timeouts included) ends within `budget_s`.
    `max_request_bytes` keeps a batch under the payload limit (6 MB real-time, 4 MB serverless).
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        spec: PreprocessSpec | None = None,
        model_id: str | None = None,
        dimension: int | None = None,
        client=None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 6,
        base_delay_s: float = 0.25,
        max_delay_s: float = 8.0,
        timeout_s: float = 30.0,
        budget_s: float = 20.0,
        max_request_bytes: int = 3_500_000,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.endpoint_name = endpoint_name
        self.spec = spec or PreprocessSpec()
        self._model_id = model_id
        self._dimension = dimension
        self.budget_s = budget_s
        # One attempt's worst case; at most half the budget, so that a retry after a timeout can still fit.
        self.attempt_timeout_s = min(timeout_s, max(1.0, budget_s / 2))
        connect_timeout_s = min(_CONNECT_TIMEOUT_S, self.attempt_timeout_s / 4)
        read_timeout_s = self.attempt_timeout_s - connect_timeout_s
        self._client = Lazy(
            lambda: (
                client
                or _make_client(
                    region_name=region_name,
                    endpoint_url=endpoint_url,
                    connect_timeout_s=connect_timeout_s,
                    read_timeout_s=read_timeout_s,
                )
            )
        )
        self.max_attempts = max(1, max_attempts)
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_request_bytes = max_request_bytes
        self._sleep = sleep

    @property
    def model_id(self) -> str:
        return self._model_id if self._model_id is not None else self._describe()[0]

    @property
    def dimension(self) -> int:
        return self._dimension if self._dimension is not None else self._describe()[1]

    @property
    def client(self):
        return self._client.get()

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """float32 (len(images), dimension), unit rows. Raises BackendUnavailableError, ModelMismatchError."""
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows = []
        for batch in self._batches([_png_within(image, self.max_request_bytes) for image in images]):
            body, content_type = protocol.encode_png_request(batch)
            answer = self._invoke(body, content_type)
            try:
                vectors, served_model = protocol.decode_response(answer, len(batch))
            except VisualSearchError as exc:
                raise BackendUnavailableError(f"endpoint {self.endpoint_name}: {exc.message}") from None
            self._check_model(served_model, vectors.shape[1])
            rows.append(vectors)
        return np.concatenate(rows).astype(np.float32, copy=False)

    def _describe(self) -> tuple[str, int]:
        """Asks the endpoint which model it serves (its model id and dimension), checks it, and remembers it."""
        body, content_type = protocol.encode_describe_request()
        try:
            description = protocol.decode_description(self._invoke(body, content_type))
        except VisualSearchError as exc:
            raise BackendUnavailableError(
                f"endpoint {self.endpoint_name} did not describe its model: {exc.message}"
            ) from exc
        if description.spec != self.spec:
            raise ModelMismatchError(
                f"endpoint {self.endpoint_name} preprocesses as {description.spec}, this client as {self.spec}"
            )
        self._model_id = self._model_id or description.model_id
        self._dimension = self._dimension or description.dimension
        self._check_model(description.model_id, description.dimension)
        return self._model_id, self._dimension

    def _check_model(self, served_model: str | None, dimension: int) -> None:
        if (served_model and self._model_id and served_model != self._model_id) or (
            self._dimension and dimension != self._dimension
        ):
            raise ModelMismatchError(
                f"endpoint {self.endpoint_name} serves {served_model} ({dimension} dimensions), "
                f"expected {self._model_id} ({self._dimension})"
            )

    def _batches(self, pngs: list[bytes]):
        """Groups of PNGs that fit in one request together, base64-encoded."""
        batch: list[bytes] = []
        size = 0
        for png in pngs:
            encoded = len(png) * 4 // 3 + 8
            if batch and (size + encoded > self.max_request_bytes or len(batch) >= protocol.MAX_IMAGES_PER_REQUEST):
                yield batch
                batch, size = [], 0
            batch.append(png)
            size += encoded
        if batch:
            yield batch

    def _invoke(self, body: bytes, content_type: str) -> bytes:
        started = time.monotonic()
        for attempt in range(1, self.max_attempts + 1):
            # The request's deadline (core/deadline.py): never start an attempt that could outlive it.
            if not request_deadline.fits(self.attempt_timeout_s):
                raise request_deadline.DeadlineExceededError(
                    f"endpoint {self.endpoint_name}: no time left for attempt {attempt} within the request's deadline"
                )
            try:
                response = self.client.invoke_endpoint(
                    EndpointName=self.endpoint_name, Body=body, ContentType=content_type, Accept="application/json"
                )
                return response["Body"].read()
            except Exception as exc:  # noqa: BLE001 - classified below; anything unknown is re-raised
                retryable, reason = classify_failure(exc)
                if reason is None:
                    raise
                delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                over_budget = time.monotonic() - started + delay + self.attempt_timeout_s > self.budget_s
                over_budget = over_budget or not request_deadline.fits(delay + self.attempt_timeout_s)
                if not retryable or attempt == self.max_attempts or over_budget:
                    raise BackendUnavailableError(
                        f"endpoint {self.endpoint_name} failed after {attempt} attempt(s): {reason}"
                    ) from None
                logger.warning("endpoint %s: %s; retry %d in %.2f s", self.endpoint_name, reason, attempt, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")


def classify_failure(exc: BaseException) -> tuple[bool, str | None]:
    """(worth retrying, reason) for a botocore failure; reason None means "not a botocore failure"."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = str(error.get("Message", ""))
        if code == "ModelError":
            original = exc.response.get("OriginalStatusCode") or error.get("OriginalStatusCode") or 0
            throttled = int(str(original)) in _RETRYABLE_MODEL_STATUSES or "throttl" in message.lower()
            return throttled, f"ModelError (model answered {original}): {message}"
        retryable = code in _RETRYABLE_CODES or status == 429 or status >= 500
        return retryable, f"{code or status}: {message}"
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)):
        return True, str(exc)
    if isinstance(exc, BotoCoreError):
        return False, str(exc)
    return False, None


def _png_within(image: Image.Image, max_request_bytes: int) -> bytes:
    """The image as lossless PNG. A rare image whose PNG exceeds the payload limit is halved until it fits: its
    vector is then close to, not identical with, the local one (photos decoded in draft mode fit easily)."""
    png = protocol.png_bytes(image)
    while len(png) * 4 // 3 > max_request_bytes and min(image.size) > 1:
        logger.warning("a %dx%d image is over the endpoint's payload limit; sending it at half size", *image.size)
        image = image.reduce(2)
        png = protocol.png_bytes(image)
    return png


_CONNECT_TIMEOUT_S = 1.0  # to a regional AWS endpoint (at most a quarter of an attempt's timeout)


def _make_client(*, region_name: str | None, endpoint_url: str | None, connect_timeout_s: float, read_timeout_s: float):
    import boto3
    from botocore.config import Config

    # Retries are ours (with jitter and ModelError awareness), so botocore's are off.
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        read_timeout=read_timeout_s,
        connect_timeout=connect_timeout_s,
    )
    return boto3.client("sagemaker-runtime", region_name=region_name, endpoint_url=endpoint_url, config=config)
