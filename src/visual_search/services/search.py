"""The search use cases: find the catalogue images nearest to a query photo, or to an already indexed image."""

from __future__ import annotations

import time
from dataclasses import dataclass

from visual_search.core.errors import InvalidRequestError, NotFoundError
from visual_search.core.images import DEFAULT_MAX_PIXELS, CropBox, crop_image, decode_image
from visual_search.core.ports import Embedder, VectorIndex
from visual_search.core.records import MAX_K, IndexStats, SearchFilters, SearchHit



@dataclass(frozen=True)
class SearchOutcome:
    """Hits by descending cosine similarity, and the wall time the search took in milliseconds."""

    hits: list[SearchHit]
    took_ms: float


class SearchService:
    def __init__(self, embedder: Embedder, index: VectorIndex, *, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.embedder = embedder
        self.index = index
        self.max_pixels = max_pixels

    def search_image(
        self,
        data: bytes,
        *,
        k: int = 12,
        filters: SearchFilters | None = None,
        crop: CropBox | None = None,
    ) -> SearchOutcome:
        """Embed the photo (or its `crop` region) and return its k nearest catalogue images.

        Raises InvalidImageError, UnsupportedImageTypeError, ImageTooLargeError or InvalidRequestError.
        """
        started = time.perf_counter()
        _check_k(k)
        if crop is not None:
            crop.validate()
        # A small crop region is enlarged to the model's size, so decode it at a correspondingly larger scale.
        zoom = 1.0 / min(crop.w, crop.h) if crop is not None else 1.0
        decoded = decode_image(
            data, min_size_px=int(self.embedder.spec.size_px * zoom), max_pixels=self.max_pixels
        )
        image = crop_image(decoded, crop) if crop is not None else decoded.image
        vector = self.embedder.embed([image])[0]
        hits = self.index.search(vector, k, filters)
        return SearchOutcome(hits=hits, took_ms=_elapsed_ms(started))

    def search_key(self, key: str, *, k: int = 12, filters: SearchFilters | None = None) -> SearchOutcome:
        """"More like this": the k nearest images to an indexed one, itself excluded, without re-embedding."""
        started = time.perf_counter()
        _check_k(k)
        vector = self.index.get_vector(key)
        if vector is None:
            raise NotFoundError(f"no indexed image has the key {key!r}")
        hits = self.index.search(vector, k, filters, exclude_keys=(key,))
        return SearchOutcome(hits=hits, took_ms=_elapsed_ms(started))

    def stats(self) -> IndexStats:
        return self.index.stats()


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidRequestError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 2)
