"""Transport-neutral handling of the HTTP API: bytes and a content type in, a status and a JSON-able body out.

Both the local FastAPI server and the AWS Lambda search handler call this, so they validate, fetch, search and
answer errors identically. Every failure becomes {"error": {"code", "message"}} with the status its error class
names; an unexpected exception is logged and answered 500 `internal_error` without a stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from visual_search.api.models import (
    HealthResponse,
    RegionProposal,
    RegionsResponse,
    SearchRequest,
    SearchResponse,
    SearchResult,
    StatsResponse,
)
from visual_search.api.request_bodies import body_limit, body_too_large, max_body_bytes, parse_body
from visual_search.api.results import ApiResult, ImageAnswer, error_result
from visual_search.core.errors import InvalidRequestError, NotFoundError
from visual_search.core.images import CropBox, DecodedImage
from visual_search.core.records import ImageRecord
from visual_search.core.wire import decode_base64_image
from visual_search.services.hotspots import propose_hotspots
from visual_search.services.search import SearchOutcome, SearchService
from visual_search.services.shared_uploads import SharedUploads

logger = logging.getLogger(__name__)

UrlFor = Callable[[ImageRecord], str]
ShowImage = Callable[[ImageRecord, int | None], ImageAnswer]


class ImageFetcher(Protocol):
    """What SearchApi needs from url_fetch.UrlFetcher: `fetch(url).data` is the image's bytes."""

    def fetch(self, url: str): ...


class SearchApi:
    """The API's operations over a SearchService.

    `url_for(record)` is where a browser loads a result image ("/images/<key>" locally, a presigned URL in AWS).
    `fetcher` serves `url` queries; without one they are refused. `max_upload_bytes` bounds the query image
    (decoded); `max_body_bytes` is the largest request body worth reading (the image base64-encoded, plus fields).
    `show_image(record, width)` answers GET /images/{key} for an indexed record (its file, a thumbnail of `width`,
    or a redirect); without it no image is shown.
    `shared_uploads` keeps uploaded query photos so a search can be shared; without it none are kept.
    """

    def __init__(
        self,
        service: SearchService,
        *,
        url_for: UrlFor,
        fetcher: ImageFetcher | None = None,
        max_upload_bytes: int = 10 * 1024 * 1024,
        show_image: ShowImage | None = None,
        shared_uploads: SharedUploads | None = None,
    ):
        self.service = service
        self.url_for = url_for
        self.fetcher = fetcher
        self.shared_uploads = shared_uploads
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_body_bytes(max_upload_bytes)
        self.show_image = show_image
        # One thread writes kept photos while the query's model step runs (an S3 PUT on AWS costs more than the
        # search itself); ONNX Runtime, hashlib and file or socket writes all release the GIL.
        self._keeper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keep-upload") if shared_uploads else None

    def handle_search(self, body: bytes, content_type: str | None) -> ApiResult:
        """POST /search. Never raises: any failure is returned as (status, error body)."""
        started = time.perf_counter()
        try:
            outcome, regions, upload = self._search(body, content_type)
            results = [self.result_of(hit.record, hit.score) for hit in outcome.hits]
            took_ms = round((time.perf_counter() - started) * 1000.0, 2)
            return 200, SearchResponse(results=results, took_ms=took_ms, regions=regions, upload=upload).model_dump()
        except Exception as exc:  # noqa: BLE001 - the API boundary: every error becomes a JSON answer
            return error_result(exc)

    def stats(self) -> ApiResult:
        try:
            stats = self.service.stats()
            return 200, StatsResponse(
                count=stats.count,
                dimension=stats.dimension,
                model_id=stats.model_id,
                labels=dict(stats.labels),
                backend=stats.backend,
                centre=dict(stats.centre) if stats.centre else None,
                adaptation=self.service.learner.state() if self.service.learner is not None else None,
            ).model_dump()
        except Exception as exc:  # noqa: BLE001
            return error_result(exc)

    def image(self, key: str, width: int | None = None) -> ImageAnswer | ApiResult:
        """GET /images/{key}: only indexed images are shown, so the route cannot read arbitrary files or objects."""
        try:
            record = self.service.index.get([key]).get(key) if key else None
            if record is None or self.show_image is None:
                raise NotFoundError(f"no indexed image has the key {key!r}")
            return self.show_image(record, width)
        except Exception as exc:  # noqa: BLE001
            return error_result(exc)

    def health(self) -> ApiResult:
        return 200, HealthResponse(status="ok", model_id=self.service.embedder.model_id).model_dump()

    def shared_photo(self, upload_id: str) -> bytes:
        """The kept photo of a shared search (GET /shared-uploads/{id}); the errors of SharedUploads.read."""
        return self._kept_photos().read(upload_id)

    def shared_photo_url(self, upload_id: str) -> str:
        """Where a browser loads a kept photo (on AWS a presigned URL), once it is known to be kept and in date,
        so that an expired one answers its 404/410 JSON here rather than a store's error inside an <img>."""
        kept = self._kept_photos()
        kept.read(upload_id)
        return kept.store.url_for(kept.key_of(upload_id))

    def _kept_photos(self) -> SharedUploads:
        if self.shared_uploads is None:
            raise NotFoundError(
                "this server keeps no uploaded photos (shared uploads are off); upload the photo again",
                code="upload_expired",
            )
        return self.shared_uploads

    def handle_regions(self, body: bytes, content_type: str | None) -> ApiResult:
        """POST /regions: the hotspots of a photo query, in the body /search takes (image, url, upload or a file;
        no key, no crop), so that a client shows the results first and asks for hotspots apart. Never raises."""
        started = time.perf_counter()
        try:
            request, sent_file = self._parsed_request(body, content_type)
            if request.key is not None or request.crop is not None:
                raise InvalidRequestError("regions are proposed for a whole photo, not for a key or a crop")
            photo = self._query_photo(request, sent_file)
            regions = self._regions(self.service.decode(photo, min_size_px=self._regions_decode_px()))
            took_ms = round((time.perf_counter() - started) * 1000.0, 2)
            return 200, RegionsResponse(regions=regions, took_ms=took_ms).model_dump()
        except Exception as exc:  # noqa: BLE001 - the API boundary: every error becomes a JSON answer
            return error_result(exc)

    def _parsed_request(self, body: bytes, content_type: str | None) -> tuple[SearchRequest, bytes | None]:
        """The validated request naming exactly one query source, and the photo file sent with it (if any)."""
        limit = body_limit(content_type, self.max_upload_bytes)
        if len(body) > limit:
            raise body_too_large(limit, content_type)
        parsed = parse_body(body, content_type, self.max_upload_bytes)
        request = SearchRequest.model_validate(parsed.fields)
        sources = [name for name in ("image", "url", "key", "upload") if getattr(request, name) is not None]
        if parsed.image is not None:
            sources.insert(0, "file")
        if len(sources) != 1:
            named = ", ".join(sources) if sources else "none"
            raise InvalidRequestError(
                f"give exactly one of image, url, key or upload (got: {named})", code="ambiguous_query"
            )
        return request, parsed.image

    def _search(self, body: bytes, content_type: str | None) -> tuple[SearchOutcome, list[RegionProposal], str | None]:
        request, sent_file = self._parsed_request(body, content_type)
        filters = request.filters.to_filters() if request.filters else None
        if request.key is not None:
            if request.crop is not None:
                raise InvalidRequestError("crop applies to an image or url query, not to a key")
            return self.service.search_key(request.key, k=request.k, filters=filters, colour=request.colour), [], None
        image = self._query_photo(request, sent_file)
        crop = CropBox(**request.crop.model_dump()) if request.crop else None
        with_regions = request.regions and crop is None
        # Results and hotspots from one decode, at the hotspots' scale (a large JPEG then gives the model a
        # little more detail than a plain search's decode; the UI asks POST /regions apart instead).
        decoded = self.service.decode(image, crop=crop, min_size_px=self._regions_decode_px() if with_regions else None)
        keeping = self._keep(image, request)  # the photo decoded: keep it while the model looks at it
        outcome = self.service.search_decoded(decoded, k=request.k, filters=filters, crop=crop, colour=request.colour)
        regions = self._regions(decoded) if with_regions else []
        return outcome, regions, self._kept_id(request, keeping)

    def _query_photo(self, request: SearchRequest, sent_file: bytes | None) -> bytes:
        """The bytes of the one photo source the request names (any but a key)."""
        if request.image is not None:
            return decode_base64_image(request.image, self.max_upload_bytes)
        if request.upload is not None:
            return self.shared_photo(request.upload)
        if request.url is not None:
            if self.fetcher is None:
                raise InvalidRequestError("searching by URL is not enabled on this server", code="url_disabled")
            return self.fetcher.fetch(request.url).data
        if sent_file is None:  # the source count above makes this unreachable
            raise InvalidRequestError("the request names no photo", code="ambiguous_query")
        return sent_file

    def _keep(self, image: bytes, request: SearchRequest) -> Future[str | None] | None:
        """Starts keeping a photo sent in this request (called once it decoded, so a photo that does not decode is
        never kept); None when there is nothing to keep: a URL query is shared by its URL, a kept one by its id."""
        if request.upload is not None or request.url is not None or self.shared_uploads is None:
            return None
        assert self._keeper is not None
        return self._keeper.submit(self.shared_uploads.keep, image)

    @staticmethod
    def _kept_id(request: SearchRequest, keeping: Future[str | None] | None) -> str | None:
        """The upload id of the query photo: the one it came by, or the one it was just kept under (waited for, so
        that the id a client receives always names a stored photo)."""
        if request.upload is not None:
            return request.upload
        return keeping.result() if keeping is not None else None

    def _regions_decode_px(self) -> int:
        # Each half of the photo is looked at on its own (services/hotspots.py): it must still fill the model.
        return 2 * self.service.embedder.spec.size_px

    def _regions(self, decoded: DecodedImage) -> list[RegionProposal]:
        """Hotspots of the query photo (services/hotspots.py); [] for a model that proposes no regions."""
        return [
            RegionProposal(x=box.x, y=box.y, w=box.w, h=box.h, score=score)
            for box, score in propose_hotspots(self.service.embedder, decoded.image)
        ]

    def result_of(self, record: ImageRecord, score: float) -> SearchResult:
        """How the API shows one catalogue item: its key, `score` (rounded), the URL a browser loads it from,
        label, size, attributes and product fields. Search hits, catalogue pages and duplicate groups all use it,
        so an item looks the same in every answer."""
        return SearchResult(
            key=record.key,
            score=round(float(score), 6),
            url=self.url_for(record),
            label=record.label,
            width=record.width,
            height=record.height,
            attributes=dict(record.attributes),
            **record.product.as_dict(),
        )
