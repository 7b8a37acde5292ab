"""The errors the library raises on bad input or failing services; each carries a stable code and an HTTP status.

Entry points map them to responses (HTTP JSON errors, Lambda responses, CLI messages with a non-zero exit);
library code never prints or exits.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class VisualSearchError(Exception):
    """Base class. `code` is a stable machine-readable string; `http_status` is what an API answers."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidImageError(VisualSearchError):
    """The bytes are not a decodable image (empty, truncated, corrupt, random bytes, SVG/HTML)."""

    code = "invalid_image"
    http_status = 400


class UnsupportedImageTypeError(VisualSearchError):
    """A well-formed file of a type this product does not index (or a request whose media type it cannot read)."""

    code = "unsupported_media_type"
    http_status = 415


class ImageTooLargeError(VisualSearchError):
    """Too many bytes, or too many pixels (a decompression bomb)."""

    code = "payload_too_large"
    http_status = 413


class InvalidRequestError(VisualSearchError):
    """A request that is well-formed but asks for something inconsistent (two query sources, a crop outside the image)."""

    code = "invalid_request"
    http_status = 400


class NotFoundError(VisualSearchError):
    code = "not_found"
    http_status = 404


class KeyConflictError(VisualSearchError):
    """A key the store cannot take because of what it already holds: `a.jpg/b.jpg` where `a.jpg` is a file."""

    code = "key_conflict"
    http_status = 409


class UploadExpiredError(NotFoundError):
    """A shared upload that was kept once and is now past its age limit (410). One that is not kept at all
    (evicted, never stored, or shared uploads off) is a NotFoundError with the same code (404), since the
    server cannot tell those apart; either way the shopper uploads the photo again."""

    code = "upload_expired"
    http_status = 410


class UnauthorizedError(VisualSearchError):
    code = "unauthorized"
    http_status = 401


class FetchError(VisualSearchError):
    """Fetching a query image by URL failed: refused by policy (400), upstream error (502), or timeout (504)."""

    code = "fetch_failed"
    http_status = 502


class FetchRefusedError(FetchError):
    code = "url_refused"
    http_status = 400


class FetchTimeoutError(FetchError):
    code = "fetch_timeout"
    http_status = 504


class ModelMismatchError(VisualSearchError):
    """The index holds vectors of another model or dimension; mixing them would give meaningless scores."""

    code = "model_mismatch"
    http_status = 409


class IndexLockedError(VisualSearchError):
    """Another process is already writing this index directory."""

    code = "index_locked"
    http_status = 409


class IndexCorruptError(VisualSearchError):
    code = "index_corrupt"
    http_status = 500


class ModelFileError(VisualSearchError):
    """A model, weights or model-config file is missing, unreadable, corrupt or inconsistent."""

    code = "model_unavailable"
    http_status = 500


class BackendUnavailableError(VisualSearchError):
    """A remote service (OpenSearch, SageMaker) could not be reached or kept failing after retries."""

    code = "backend_unavailable"
    http_status = 503


class BackendUnauthorizedError(BackendUnavailableError):
    """A backend (OpenSearch, SageMaker) refused this service's own credentials: a deployment problem, so an API
    answers 503, never the 401 that would ask the shopper for a key."""

    code = "backend_unauthorized"


class UnhealthyError(VisualSearchError):
    """A part of the service that runs beside the routes (the folder watcher) died or is stuck: /health says so."""

    code = "unhealthy"
    http_status = 503


class IndexClosedError(VisualSearchError):
    """The index was used after close(): a lifecycle bug in the caller, answered as a service fault."""

    code = "index_closed"
    http_status = 503


class InvalidSettingError(VisualSearchError):
    """A setting has a value the service cannot use (an unknown embedder, a malformed index URL option)."""

    code = "invalid_setting"
    http_status = 503


class MissingSettingError(VisualSearchError):
    """A setting the deployment must provide is unset: the operator's problem, never the caller's."""

    code = "missing_setting"
    http_status = 503

    def __init__(self, setting: str, requirement: str):
        self.setting = "VISUAL_SEARCH_" + setting.upper()
        super().__init__(f"the service is not configured: {self.setting} {requirement}")


def error_body(code: str, message: str) -> dict:
    """The one shape of every error answer, on every transport: {"error": {"code", "message"}}."""
    return {"error": {"code": code, "message": message}}


def error_for(exc: BaseException) -> tuple[int, dict]:
    """(HTTP status, error body) for any exception. Only the library's own errors reach the caller in words; any
    other exception is logged with its traceback and answered as a bare internal error."""
    if isinstance(exc, VisualSearchError):
        return exc.http_status, error_body(exc.code, exc.message)
    logger.error("unexpected error while handling a request", exc_info=exc)
    return 500, error_body("internal_error", "the server failed to handle this request; it has been logged")
