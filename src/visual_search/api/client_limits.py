"""The request limits a client needs before it sends anything, from the settings and the core constants, so the
web UI checks a photo's size and type (and caps "Show more") by the server's own numbers instead of copies."""

from __future__ import annotations

from visual_search.core.images import IMAGE_MEDIA_TYPES
from visual_search.core.records import MAX_K
from visual_search.core.settings import Settings


def client_limits(settings: Settings) -> dict:
    """{maxK, maxUploadBytes, maxPixels, imageTypes}: the most results one search returns, the largest image
    upload in bytes, the most pixels an image may decode to, and the image media types the server reads."""
    return {
        "maxK": MAX_K,
        "maxUploadBytes": settings.max_upload_bytes,
        "maxPixels": settings.max_pixels,
        "imageTypes": list(IMAGE_MEDIA_TYPES),
    }
