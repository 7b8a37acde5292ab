"""Reading what arrives on the wire, shared by every transport: base64 images (plain or data URLs) and JSON
objects. The search API, the SageMaker route and the endpoint's inference script read bodies with these, so a
body means the same thing everywhere."""

from __future__ import annotations

import base64
import binascii
import json
import re

from visual_search.core.errors import ImageTooLargeError, InvalidRequestError

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def check_image_size(size: int, max_image_bytes: int) -> None:
    if size > max_image_bytes:
        raise ImageTooLargeError(f"the image is over the {max_image_bytes:,}-byte limit")


def decode_base64_image(text: str, max_image_bytes: int) -> bytes:
    """Bytes of a base64 string or data URL. The size is checked before decoding, so a huge string is cheap."""
    match = _DATA_URL.match(text)
    payload = text[match.end() :] if match else text
    payload = "".join(payload.split())  # line-wrapped base64 (MIME style) is valid
    check_image_size(len(payload) * 3 // 4, max_image_bytes)
    if not _BASE64.fullmatch(payload):
        raise InvalidRequestError("image is not valid base64", code="invalid_base64")
    try:
        # Accept the URL-safe alphabet too; padding is optional in practice, so restore it.
        return base64.b64decode(payload.translate(_URLSAFE_TO_STANDARD) + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("image is not valid base64", code="invalid_base64") from None


def json_object(body: bytes) -> dict:
    try:
        value = json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nesting deeper than ~1000 levels
        raise InvalidRequestError("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(value, dict):
        raise InvalidRequestError("the body must be a JSON object", code="invalid_json")
    return value
