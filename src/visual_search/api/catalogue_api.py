"""Transport-neutral catalogue operations: list the items, add one, delete one, report near-duplicates.

Like SearchApi, every method answers (status, JSON-able body) and never raises, so the local server and a
Lambda handler can both serve it. Writes go through a CatalogueWriter, built on first use (on a laptop that
opens the index for writing, so it takes the one-writer lock only when an operator first adds or deletes).
"""

from __future__ import annotations

from collections.abc import Callable

from visual_search.api.catalogue_models import (
    AddItemForm,
    DeletedResponse,
    DuplicateGroupModel,
    DuplicatesResponse,
    ItemsQuery,
    ItemsResponse,
)
from visual_search.api.request_bodies import body_limit, body_too_large, media_type, parse_body
from visual_search.api.results import ApiResult, error_result
from visual_search.api.search_api import SearchApi
from visual_search.core.errors import InvalidRequestError
from visual_search.core.products import product_from_columns
from visual_search.core.records import PRODUCT_FIELDS, SearchFilters
from visual_search.services.catalogue import CatalogueWriter
from visual_search.services.duplicates import DEFAULT_THRESHOLD, checked_threshold, find_duplicates


class CatalogueApi:
    def __init__(self, search_api: SearchApi, writer: Callable[[], CatalogueWriter], *, max_pixels: int):
        self.search_api = search_api
        self._writer = writer
        self.max_pixels = max_pixels

    @property
    def index(self):
        return self.search_api.service.index

    def list_items(self, query: dict) -> ApiResult:
        """GET /items?offset=&limit=&label= : a page of items ordered by key, the total, and counts per label."""
        try:
            params = ItemsQuery.model_validate(query)
            filters = SearchFilters(labels=frozenset({params.label})) if params.label else None
            page = self.index.list_records(offset=params.offset, limit=params.limit, filters=filters)
            counts = dict(self.index.stats().labels)
            items = [self.search_api.result_of(record, 1.0) for record in page.records]
            return 200, ItemsResponse(items=items, total=page.total, label_counts=counts).model_dump()
        except Exception as exc:  # noqa: BLE001 - the API boundary
            return error_result(exc)

    def add_item(self, body: bytes, content_type: str | None) -> ApiResult:
        """POST /items (multipart: `file`, optional key, label, product fields, attributes as JSON) -> 201."""
        try:
            limit = body_limit(content_type, self.search_api.max_upload_bytes)
            if len(body) > limit:  # the local server stops reading sooner; a Lambda event arrives whole
                raise body_too_large(limit, content_type)
            if media_type(content_type)[0] != "multipart/form-data":
                raise InvalidRequestError(
                    "send the item as multipart/form-data with a 'file' field", code="invalid_multipart"
                )
            parsed = parse_body(body, content_type, self.search_api.max_upload_bytes)
            if parsed.image is None:
                raise InvalidRequestError("the multipart body has no 'file' field", code="invalid_multipart")
            form = AddItemForm.model_validate(parsed.fields)
            product = product_from_columns({name: getattr(form, name) for name in PRODUCT_FIELDS})
            key, record = self._writer().add(
                parsed.image,
                form.key,
                label=(form.label or "").strip() or None,
                attributes=form.attributes,
                product=product,
                max_pixels=self.max_pixels,
            )
            if record is None:  # the bucket's event indexes it
                return 202, {"key": key, "status": "stored; it is indexed when the bucket's event is processed"}
            return 201, self.search_api.result_of(record, 1.0).model_dump()
        except Exception as exc:  # noqa: BLE001
            return error_result(exc)

    def delete_item(self, key: str) -> ApiResult:
        """DELETE /items/{key}: out of the index, and its file out of the store that owns it."""
        try:
            record = self._writer().delete(key)
            return 200, DeletedResponse(deleted=record.key).model_dump()
        except Exception as exc:  # noqa: BLE001
            return error_result(exc)

    def duplicates(self, query: dict) -> ApiResult:
        """GET /duplicates?threshold= : groups of near-identical images."""
        try:
            threshold = _threshold(query)
            report = find_duplicates(self.index, threshold=threshold)
            groups = [
                DuplicateGroupModel(items=[self.search_api.result_of(m.record, m.score) for m in group.members])
                for group in report.groups
            ]
            return 200, DuplicatesResponse(
                threshold=report.threshold, images_scanned=report.images_scanned, groups=groups
            ).model_dump()
        except Exception as exc:  # noqa: BLE001
            return error_result(exc)


def _threshold(query: dict) -> float:
    unknown = set(query) - {"threshold"}
    if unknown:
        raise InvalidRequestError(f"unknown query parameter {sorted(unknown)[0]!r}: only threshold")
    return checked_threshold(query.get("threshold", DEFAULT_THRESHOLD))
