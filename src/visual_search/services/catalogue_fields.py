"""Where an image indexed from an S3 event gets its label, attributes and product fields.

Two sources, the first that says something wins, field by field:
1. the object's own user metadata: `x-amz-meta-label`, the product fields (`x-amz-meta-title`, `-price`,
   `-currency`, `-product_url`, `-brand`) and any other `x-amz-meta-<name>` as an attribute;
2. the catalogue manifest: a CSV object in the bucket with the columns of `visual-search index --labels`
   (`path` holds object keys), read with the same parser (core/catalogue_csv.py).
What neither names is kept from the record already indexed (a backfill's label survives a re-upload).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from visual_search.core.catalogue_csv import CatalogueEntry, read_catalogue_csv
from visual_search.core.errors import InvalidRequestError, NotFoundError, VisualSearchError
from visual_search.core.ports import ImageStore
from visual_search.core.products import product_from_columns
from visual_search.core.records import PRODUCT_FIELDS, Product
from visual_search.core.text_rules import checked_attributes, checked_label

logger = logging.getLogger(__name__)

LABEL_METADATA = "label"
PRODUCT_FIELDS_SET = frozenset(PRODUCT_FIELDS)
MANIFEST_TTL_S = 60.0  # a changed manifest reaches new events within a minute; see docs/DEPLOY.md for re-indexing


@dataclass(frozen=True)
class CatalogueFields:
    """What is known about one image. label/product None: not said (keep what the index holds)."""

    label: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    product: Product | None = None

    def under(self, fallback: CatalogueFields) -> CatalogueFields:
        """These fields, with `fallback` filling what these do not say."""
        return CatalogueFields(
            label=self.label or fallback.label,
            attributes={**fallback.attributes, **self.attributes},
            product=_merged_product(self.product, fallback.product),
        )


def fields_from_metadata(metadata: Mapping[str, str], *, where: str) -> CatalogueFields:
    """The catalogue fields an object's user metadata carries. Raises InvalidRequestError for a malformed product
    value (a price that is not a number, a product_url that is not http(s)), naming `where`."""
    names = {name.lower(): value for name, value in metadata.items() if value not in (None, "")}
    product = product_from_columns(names, where=f"metadata of {where}") if PRODUCT_FIELDS_SET & set(names) else None
    # The length and character rules of every catalogue text (core/text_rules.py), as POST /items and CSVs apply.
    try:
        attributes = checked_attributes(
            {name: value for name, value in names.items() if name != LABEL_METADATA and name not in PRODUCT_FIELDS_SET}
        )
        label = checked_label(names.get(LABEL_METADATA))
    except InvalidRequestError as error:
        raise InvalidRequestError(f"metadata of {where}: {error.message}", code="invalid_product") from None
    return CatalogueFields(label=label, attributes=attributes, product=product)


class CatalogueManifest:
    """The manifest CSV of one bucket, read through its ImageStore and cached for `ttl_s` seconds per container.

    A missing manifest labels nothing. A malformed one is logged as an error and labels nothing until fixed (the
    images are still indexed and searchable; re-index once it is fixed, docs/DEPLOY.md).
    """

    def __init__(
        self, store: ImageStore, key: str, *, ttl_s: float = MANIFEST_TTL_S, clock: Callable[[], float] = time.monotonic
    ):
        self.store = store
        self.key = key
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, CatalogueEntry] = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def fields_for(self, key: str) -> CatalogueFields:
        entry = self._current().get(key)
        if entry is None:
            return CatalogueFields()
        product = None if entry.product.is_empty else entry.product
        return CatalogueFields(label=entry.label, attributes=dict(entry.attributes), product=product)

    def _current(self) -> dict[str, CatalogueEntry]:
        with self._lock:
            if self._read_at is None or self._clock() - self._read_at >= self.ttl_s:
                self._entries = self._load()
                self._read_at = self._clock()
            return self._entries

    def _load(self) -> dict[str, CatalogueEntry]:
        try:
            data = self.store.read(self.key)
        except NotFoundError:
            return {}
        # The one catalogue CSV parser reads files; the manifest is small, so it goes through a temporary file.
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "manifest.csv"
            path.write_bytes(data)
            try:
                entries = read_catalogue_csv(path)
            except VisualSearchError as exc:
                logger.error(
                    "the catalogue manifest %s is not usable, so it labels nothing: %s",
                    self.store.uri(self.key),
                    exc.message.replace(str(path), self.key),
                )
                return {}
        return {entry.listed_path: entry for entry in entries}


def _merged_product(first: Product | None, second: Product | None) -> Product | None:
    if first is None or second is None:
        return first or second
    values = first.as_dict()
    return Product.from_dict(
        {name: values[name] if values[name] is not None else value for name, value in second.as_dict().items()}
    )
