"""Resized copies of catalogue images for result cards: `GET /images/{key}?w=320` serves a JPEG that fits in
320x320 (aspect kept, never enlarged), made once and then read from a disk cache.

Widths snap up to a few fixed sizes so that a client asking for every width from 1 to 2048 cannot fill the disk.
The cache never opens a catalogue file: it is given the bytes that were checked (stores/local_folder.
read_indexed_file: inside the folder, a regular file, with the indexed content hash) and names the thumbnail after
the hash of those very bytes, so an image swapped in on disk can neither be thumbnailed nor cached under the
indexed image's name. Files are written under a temporary name and renamed into place: a
reader never sees half a thumbnail, and two requests racing to make one both succeed.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image

from visual_search.core.errors import InvalidRequestError
from visual_search.core.hashing import sha256_hex
from visual_search.core.images import DEFAULT_MAX_PIXELS, decode_image

THUMBNAIL_SIZES = (160, 320, 480, 640, 800, 1024)
MAX_REQUESTED_PX = 4096
JPEG_QUALITY = 82


def thumbnail_size(requested: int) -> int:
    """The smallest cached size at least `requested` px (the largest one above it); InvalidRequestError below 1."""
    if requested < 1 or requested > MAX_REQUESTED_PX:
        raise InvalidRequestError(f"w must be a width from 1 to {MAX_REQUESTED_PX} pixels, not {requested}")
    return next((size for size in THUMBNAIL_SIZES if size >= requested), THUMBNAIL_SIZES[-1])


def default_thumbnail_dir(cache_dir: str | Path | None) -> Path:
    """`cache_dir`/thumbnails (VISUAL_SEARCH_CACHE_DIR), else the per-user cache directory's."""
    if cache_dir:
        return Path(cache_dir) / "thumbnails"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("visual-search")) / "thumbnails"


class ThumbnailCache:
    def __init__(self, directory: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.directory = Path(directory)
        self.max_pixels = max_pixels

    def thumbnail(self, data: bytes, requested_px: int) -> Path:
        """The path of the thumbnail of the image `data` for a `requested_px` box, made now if not cached yet.
        Raises InvalidRequestError for a bad width, and the decoder's errors for bytes that are no image."""
        size = thumbnail_size(requested_px)
        name = sha256_hex(data)[:32]  # of the bytes thumbnailed: a cached file is always the image it is named for
        target = self.directory / name[:2] / f"{name}-{size}.jpg"
        if target.is_file():
            return target
        decoded = decode_image(data, min_size_px=size, max_pixels=self.max_pixels)
        image = _fitted(decoded.image, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                _save_jpeg(image, out)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target


def thumbnail_jpegs(
    data: bytes, sizes: tuple[int, ...] = THUMBNAIL_SIZES, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> dict[int, bytes]:
    """{size: the JPEG that fits size x size} for each of `sizes`, from one decode of the image `data`: what the
    local server's cache makes one at a time, made all at once (the AWS index function writes them next to the
    bucket's images). Raises the decoder's errors for bytes that are no image."""
    decoded = decode_image(data, min_size_px=max(sizes), max_pixels=max_pixels)
    jpegs = {}
    for size in sizes:
        out = io.BytesIO()
        _save_jpeg(_fitted(decoded.image.copy(), size), out)
        jpegs[size] = out.getvalue()
    return jpegs


def _fitted(image: Image.Image, size: int) -> Image.Image:
    image.thumbnail((size, size), Image.Resampling.LANCZOS)  # fits the box, keeps the aspect, never enlarges
    return image


def _save_jpeg(image: Image.Image, out) -> None:
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
