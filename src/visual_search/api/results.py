"""What every transport-neutral API method answers: (HTTP status, JSON-able body), and the one way an exception
becomes such an answer, so the local server and the Lambda front end report every error identically."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from visual_search.core.errors import error_body, error_for

ApiResult = tuple[int, dict]


@dataclass(frozen=True)
class RawAnswer:
    """An answer that is not one of the API's JSON bodies: the SageMaker route answers bytes in SageMaker's own
    format."""

    status: int
    body: bytes
    media_type: str = "application/json"


@dataclass(frozen=True)
class ImageAnswer:
    """GET /images/{key}: the image itself (`data`, or a file at `path` such as a cached thumbnail), or a
    `redirect` to a short-lived address of it (a presigned S3 URL)."""

    data: bytes | None = None
    path: str | None = None
    media_type: str = "application/octet-stream"
    redirect: str | None = None
    cache_control: str | None = None  # None: the front end's default for catalogue images


def error_result(exc: BaseException) -> ApiResult:
    """(status, body) for any exception; only the library's own errors and validation errors reach the client."""
    if isinstance(exc, ValidationError):
        return 422, error_body("validation_error", describe_validation_errors(exc.errors()))
    return error_for(exc)


def describe_validation_errors(errors) -> str:
    """One line per problem, e.g. "k: Input should be less than or equal to 100", with no input values echoed."""
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",)) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)
