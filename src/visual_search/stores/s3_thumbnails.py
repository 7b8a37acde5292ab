"""Thumbnails of the bucket's catalogue images, written next to them when an image is indexed, so that a phone
on the deployed UI loads a few hundred kilobytes per result card instead of a 12 MP original.

The local server makes the same sizes on demand into a disk cache (stores/thumbnail_cache.py, the same code); a Lambda
function has no lasting disk, so here they are made once, at indexing time, under `thumbnails/<size>/<key>.jpg`
in the image's own bucket, and removed with the image. A record whose thumbnails were all written says so in
its attributes, and only then does the search function hand out a thumbnail's presigned URL instead of the
original's (an image indexed before thumbnails existed keeps its original until it is indexed again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from visual_search.core.images import DEFAULT_MAX_PIXELS
from visual_search.core.object_events import THUMBNAIL_PREFIX, THUMBNAILS_ATTRIBUTE
from visual_search.core.records import ImageRecord
from visual_search.stores.thumbnail_cache import THUMBNAIL_SIZES, thumbnail_jpegs

logger = logging.getLogger(__name__)

RESULT_CARD_PX = 800  # one size serves the result card, the detail view and a region search's pixels
CACHE_CONTROL = "private, max-age=86400"  # a thumbnail's key changes with nothing but its image: cache a day


def thumbnail_key(key: str, size: int) -> str:
    return f"{THUMBNAIL_PREFIX}{size}/{key}.jpg"


class S3Thumbnails:
    """Writes and removes the thumbnails of images in S3. `client_for_bucket(bucket)` gives the boto3 S3 client
    to use for that bucket (its S3ImageStore's)."""

    def __init__(
        self,
        client_for_bucket: Callable[[str], object],
        *,
        sizes: tuple[int, ...] = THUMBNAIL_SIZES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        self.client_for_bucket = client_for_bucket
        self.sizes = sizes
        self.max_pixels = max_pixels

    def write(self, bucket: str, key: str, data: bytes) -> bool:
        """Makes and puts every size of the image `data`; False (logged) when any could not be made or written.
        A thumbnail is a convenience: its failure never fails the image's indexing."""
        try:
            jpegs = thumbnail_jpegs(data, self.sizes, max_pixels=self.max_pixels)
            client = self.client_for_bucket(bucket)
            for size, jpeg in jpegs.items():
                client.put_object(  # type: ignore[attr-defined]
                    Bucket=bucket,
                    Key=thumbnail_key(key, size),
                    Body=jpeg,
                    ContentType="image/jpeg",
                    CacheControl=CACHE_CONTROL,
                )
        except Exception as exc:  # noqa: BLE001 - logged; the record then points at its original
            logger.warning("the thumbnails of s3://%s/%s were not written: %s", bucket, key, exc)
            return False
        return True

    def remove(self, bucket: str, keys: Iterable[str]) -> None:
        """Deletes every size of each key's thumbnails (one request per 1,000 objects; missing ones are fine)."""
        keys = list(keys)
        objects = [{"Key": thumbnail_key(key, size)} for key in keys for size in self.sizes]
        try:
            client = self.client_for_bucket(bucket)
            for start in range(0, len(objects), 1000):
                client.delete_objects(  # type: ignore[attr-defined]
                    Bucket=bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True}
                )
        except Exception as exc:  # noqa: BLE001 - a leftover thumbnail is never served: its record is gone
            logger.warning("the thumbnails of %d images in s3://%s were not removed: %s", len(keys), bucket, exc)


def result_url(url_for_key: Callable[[str], str]) -> Callable[[ImageRecord], str]:
    """The `url_for(record)` of the search API on AWS: the presigned URL of the record's RESULT_CARD_PX thumbnail
    when its thumbnails were written, else of the original."""

    def url_for(record: ImageRecord) -> str:
        if record.attributes.get(THUMBNAILS_ATTRIBUTE) == "1":
            return url_for_key(thumbnail_key(record.key, RESULT_CARD_PX))
        return url_for_key(record.key)

    return url_for
