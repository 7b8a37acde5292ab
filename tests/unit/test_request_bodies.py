"""A raw image body is one rule (api/request_bodies.py): every media type that gets the image's size limit is also
read as an image, so no type is given a limit by one function and refused by the next."""

from __future__ import annotations

import pytest

from visual_search.api.request_bodies import body_limit, max_body_bytes, parse_body
from visual_search.core.errors import ImageTooLargeError, UnsupportedImageTypeError

LIMIT = 1000


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/octet-stream", "application/x-image"])
def test_a_type_with_the_image_limit_is_read_as_an_image(content_type):
    assert body_limit(content_type, LIMIT) == LIMIT
    assert parse_body(b"\xff\xd8 bytes", content_type, LIMIT).image == b"\xff\xd8 bytes"
    with pytest.raises(ImageTooLargeError):
        parse_body(b"x" * (LIMIT + 1), content_type, LIMIT)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_any_other_type_gets_the_body_limit_and_is_refused(content_type):
    assert body_limit(content_type, LIMIT) == max_body_bytes(LIMIT)
    with pytest.raises(UnsupportedImageTypeError):
        parse_body(b"hello", content_type, LIMIT)
