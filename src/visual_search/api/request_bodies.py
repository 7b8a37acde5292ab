"""Reading a search request body (JSON, multipart/form-data or a raw image) into fields and image bytes.

Pure functions over bytes, with no web framework, so the local server and the Lambda handler read bodies the
same way. Raises UnsupportedImageTypeError (415) for media types it cannot read, InvalidRequestError (400) for
malformed bodies and bad base64, ImageTooLargeError (413) for images over the limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from email.utils import collapse_rfc2231_value

from visual_search.core.errors import ImageTooLargeError, InvalidRequestError, UnsupportedImageTypeError
from visual_search.core.wire import check_image_size, json_object

ACCEPTED_TYPES = "application/json, multipart/form-data (field 'file') or an image/* body"
_FORM_FIELDS = (
    "k",
    "filters",
    "crop",
    "key",
    "url",
    "upload",
    "colour",
)  # JSON-valued or plain form fields besides `file`


@dataclass
class ParsedBody:
    """The request's fields (validated later against SearchRequest) and, for uploads, the raw image bytes."""

    fields: dict = field(default_factory=dict)
    image: bytes | None = None


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """("multipart/form-data", {"boundary": ...}) from a Content-Type header value."""
    message = Message()
    message["content-type"] = content_type or ""
    params = {name.lower(): value for name, value in message.get_params(failobj=[])[1:]}
    return message.get_content_type().lower() if content_type else "", params


def max_body_bytes(max_image_bytes: int) -> int:
    """The largest body worth reading: an image of the limit, base64-encoded, plus room for the other fields."""
    return max_image_bytes * 4 // 3 + 64 * 1024


def _is_raw_image(kind: str) -> bool:
    return kind.startswith("image/") or kind in ("application/octet-stream", "application/x-image")


def body_limit(content_type: str | None, max_image_bytes: int) -> int:
    """The most bytes a request body of this type may have: the image limit for a raw image body, else room for
    the image base64-encoded plus fields (JSON, multipart, or a type the route will refuse anyway)."""
    return max_image_bytes if _is_raw_image(media_type(content_type)[0]) else max_body_bytes(max_image_bytes)


def body_too_large(limit: int, content_type: str | None) -> ImageTooLargeError:
    """The 413 for a body over `limit`, stating that limit and what it is made of."""
    if _is_raw_image(media_type(content_type)[0]):
        return ImageTooLargeError(f"the image is over the {limit:,}-byte limit")
    return ImageTooLargeError(
        f"the request body is over the {limit:,}-byte limit (an image at the upload limit, base64-encoded, "
        "plus the other fields)"
    )


def parse_body(body: bytes, content_type: str | None, max_image_bytes: int) -> ParsedBody:
    kind, params = media_type(content_type)
    if kind == "application/json" or kind.endswith("+json"):
        return ParsedBody(fields=json_object(body))
    if kind == "multipart/form-data":
        return _parse_multipart(body, params.get("boundary", ""), max_image_bytes)
    if _is_raw_image(kind):
        check_image_size(len(body), max_image_bytes)
        return ParsedBody(image=body)
    what = f"a body of type {kind}" if kind else "a body without a Content-Type header"
    raise UnsupportedImageTypeError(f"cannot read {what}: send {ACCEPTED_TYPES}")


def _parse_multipart(body: bytes, boundary: str, max_image_bytes: int) -> ParsedBody:
    if not boundary:
        raise InvalidRequestError("the multipart body has no boundary", code="invalid_multipart")
    parsed = ParsedBody()
    delimiter = b"--" + boundary.encode("latin-1")
    for raw_part in body.split(delimiter)[1:]:
        if raw_part.startswith(b"--"):
            break  # the closing delimiter
        head, separator, content = raw_part.partition(b"\r\n\r\n")
        if not separator:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = _header(head, "content-disposition")
        name = _param(disposition, "name")
        if name and (name in parsed.fields or (name == "file" and parsed.image is not None)):
            raise InvalidRequestError(f"the form field {name!r} is given twice", code="invalid_multipart")
        if name == "file":
            check_image_size(len(content), max_image_bytes)
            parsed.image = content
        elif name in _FORM_FIELDS:
            text = content.decode("utf-8", errors="replace")
            parsed.fields[name] = _form_value(name, text)
        elif name:
            parsed.fields[name] = content.decode("utf-8", errors="replace")  # refused later as an extra field
    if parsed.image is None and not any(name in parsed.fields for name in ("key", "url", "upload")):
        raise InvalidRequestError("the multipart body has no 'file' field", code="invalid_multipart")
    return parsed


def _form_value(name: str, text: str):
    if name in ("filters", "crop"):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise InvalidRequestError(f"the form field {name!r} must be a JSON object", code="invalid_multipart")
        return value
    return text


def _header(head: bytes, wanted: str) -> str:
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == wanted:
            return value.strip()
    return ""


def _param(header_value: str, wanted: str) -> str | None:
    message = Message()
    message["content-disposition"] = header_value
    value = message.get_param(wanted, header="content-disposition")
    if isinstance(value, tuple):  # an RFC 2231 parameter (filename*=utf-8''...): charset, language, text
        return collapse_rfc2231_value(value)
    return value
