"""The search use cases: find the catalogue images nearest to a query photo, or to an already indexed image."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from visual_search.core import colour as colour_signature
from visual_search.core.errors import InvalidRequestError, NotFoundError
from visual_search.core.images import DEFAULT_MAX_PIXELS, CropBox, DecodedImage, crop_image, decode_image
from visual_search.core.ports import Embedder, QueryEmbedder, VectorIndex
from visual_search.core.records import DEFAULT_K, MAX_K, IndexStats, SearchFilters, SearchHit
from visual_search.services.adaptation import QueryDomainLearner, current_client


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
        self._query_embedder = embedder if isinstance(embedder, QueryEmbedder) else None
        # Learns the query-domain centre from the photos searched (services/adaptation.py); None: off.
        self.learner: QueryDomainLearner | None = None

    def search_image(
        self,
        data: bytes,
        *,
        k: int = DEFAULT_K,
        filters: SearchFilters | None = None,
        crop: CropBox | None = None,
        colour: float = 0.0,
    ) -> SearchOutcome:
        """Embed the photo (or its `crop` region) and return its k nearest catalogue images. `colour` in [0, 1]
        weighs colour similarity against appearance (0: appearance only; see core/colour.py).

        Raises InvalidImageError, UnsupportedImageTypeError, ImageTooLargeError or InvalidRequestError.
        """
        started = time.perf_counter()
        _check_query(k, colour, crop)
        return self.search_decoded(
            self.decode(data, crop=crop), k=k, filters=filters, crop=crop, colour=colour, started=started
        )

    def decode(self, data: bytes, *, crop: CropBox | None = None, min_size_px: int | None = None) -> DecodedImage:
        """The photo decoded as a search needs it: at least the model's input size (or `min_size_px`), and a
        small `crop` region correspondingly larger, since it is enlarged to the model's size."""
        if crop is not None:
            crop.validate()
        zoom = 1.0 / min(crop.w, crop.h) if crop is not None else 1.0
        needed = max(int(self.embedder.spec.size_px * zoom), min_size_px or 0)
        return decode_image(data, min_size_px=needed, max_pixels=self.max_pixels)

    def search_decoded(
        self,
        decoded: DecodedImage,
        *,
        k: int = DEFAULT_K,
        filters: SearchFilters | None = None,
        crop: CropBox | None = None,
        colour: float = 0.0,
        started: float | None = None,
    ) -> SearchOutcome:
        """`search_image` of a photo already decoded (by `decode`), for callers that also need its pixels."""
        started = time.perf_counter() if started is None else started
        _check_query(k, colour, crop)
        image = crop_image(decoded, crop) if crop is not None else decoded.image
        # On AWS one search in adapt_live_flush_every also sends the instance's buffered sums (docs/DEPLOY.md:
        # one scripted update, 12-40 ms on the local node): beside this search's model and index calls.
        flushing = self.learner.start_due_flush() if self.learner is not None else None
        try:
            if self._query_embedder is not None:
                vector = self._query_embedder.embed_query(image, with_colour=colour > 0)  # no colour at weight 0
            else:
                vector = self.embedder.embed([image])[0]
            hits = self._search(vector, k, filters, colour)
            if self.learner is not None:
                self.learner.observe(vector, current_client.get())  # after the search: no hit waits for it
        finally:
            if self.learner is not None:
                self.learner.finish_flush(flushing)
        return SearchOutcome(hits=hits, took_ms=_elapsed_ms(started))

    def search_key(
        self, key: str, *, k: int = DEFAULT_K, filters: SearchFilters | None = None, colour: float = 0.0
    ) -> SearchOutcome:
        """ "More like this": the k nearest images to an indexed one, itself excluded, without re-embedding."""
        started = time.perf_counter()
        _check_k(k)
        colour_signature.check_colour_weight(colour)
        vector = self.index.get_vector(key)
        if vector is None:
            raise NotFoundError(f"no indexed image has the key {key!r}")
        hits = self._search(vector, k, filters, colour, exclude_keys=(key,))
        return SearchOutcome(hits=hits, took_ms=_elapsed_ms(started))

    def _search(
        self, signature: np.ndarray, k: int, filters: SearchFilters | None, colour: float, exclude_keys=()
    ) -> list[SearchHit]:
        """Searches with the stored-format vector, weighting its colour part when the model's vectors have one."""
        colour_dimension = colour_signature.colour_dimension_of(self.embedder.model_id)
        if not colour_dimension:
            if colour:
                raise InvalidRequestError(
                    f"colour matching needs vectors with a colour descriptor, and the model {self.embedder.model_id} "
                    "makes none: leave colour at 0, or re-index with a built-in lite2 model"
                )
            return self.index.search(signature, k, filters, exclude_keys=exclude_keys)
        query = colour_signature.query_vector(signature, colour_dimension, colour)
        hits = self.index.search(query, k, filters, exclude_keys=exclude_keys)
        return [replace(hit, score=colour_signature.fused_score(hit.score, colour)) for hit in hits]

    def stats(self) -> IndexStats:
        return self.index.stats()


def _check_query(k: int, colour: float, crop: CropBox | None) -> None:
    _check_k(k)
    colour_signature.check_colour_weight(colour)
    if crop is not None:
        crop.validate()


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidRequestError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 2)
