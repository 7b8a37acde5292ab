"""Value objects passed between the ports: what an indexed image is, and what a search returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_K = 100  # the most results one search may ask for, on every transport
DEFAULT_K = 12  # how many results a search gives when it does not say: the API, the CLI and the service


@dataclass(frozen=True)
class Product:
    """What a shopper needs to know about the item an image shows; every field is optional.

    `price` is in units of `currency` (an ISO 4217 code such as "EUR"); `product_url` is an http(s) address of
    the item's page in the shop. core/products.py checks these when a catalogue is read.
    """

    title: str | None = None
    price: float | None = None
    currency: str | None = None
    product_url: str | None = None
    brand: str | None = None

    @property
    def is_empty(self) -> bool:
        return all(value is None for value in self.as_dict().values())

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in PRODUCT_FIELDS}

    @classmethod
    def from_dict(cls, values: Mapping | None) -> Product:
        """The inverse of as_dict for stored documents; unknown names are ignored, a missing price stays None."""
        values = values or {}
        price = values.get("price")
        return cls(
            **{name: values.get(name) for name in PRODUCT_FIELDS if name != "price"},
            price=None if price is None else float(price),
        )


PRODUCT_FIELDS = ("title", "price", "currency", "product_url", "brand")


@dataclass(frozen=True)
class ImageRecord:
    """One indexed image's metadata; its vector is stored beside it by the VectorIndex.

    `key` is the stable identity (a path relative to the indexed folder, or an S3 object key): indexing the
    same key again replaces the record. `uri` says where the bytes live (an absolute file path or s3://...).
    `content_hash` is the hex SHA-256 of the file's bytes. `indexed_at` is seconds since the epoch (UTC).
    `product` is the shop's data about the item (title, price, link); empty for a catalogue without it.
    """

    key: str
    uri: str
    content_hash: str
    width: int
    height: int
    label: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    indexed_at: float = 0.0
    product: Product = field(default_factory=Product)


@dataclass(frozen=True)
class SearchHit:
    """A search result. `score` is the cosine similarity of unit vectors: 1.0 is identical, higher is better."""

    record: ImageRecord
    score: float


@dataclass(frozen=True)
class SearchFilters:
    """Restricts a search to records whose label is one of `labels` and whose attributes match.

    `None` / empty means no restriction. Each attribute maps to the set of values it may take.
    """

    labels: frozenset[str] | None = None
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.labels and not self.attributes

    def matches(self, record: ImageRecord) -> bool:
        if self.labels and record.label not in self.labels:
            return False
        return all(record.attributes.get(name) in allowed for name, allowed in self.attributes.items())


@dataclass(frozen=True)
class IndexStats:
    """What /stats and `visual-search stats` report. `labels` counts records per label (unlabelled omitted)."""

    count: int
    dimension: int | None
    model_id: str | None
    labels: Mapping[str, int]
    backend: str
    # The query-domain centre searches use ({"centre_id", "photos"}; None without one): see core/centre.py.
    centre: Mapping[str, object] | None = None


def centre_summary(centre) -> dict[str, object] | None:
    """What stats say about a core.centre.Centre (None stays None)."""
    return None if centre is None else {"centre_id": centre.centre_id, "photos": centre.photos}


@dataclass(frozen=True)
class RecordPage:
    """One page of a catalogue listing (ordered by key) and how many records match the listing's filters in all."""

    records: list[ImageRecord]
    total: int


MAX_PAGE = 500  # the most records one listing page may hold


def checked_page(offset: int, limit: int) -> tuple[int, int]:
    """(offset, limit) when offset >= 0 and 1 <= limit <= MAX_PAGE; ValueError otherwise (a caller's bug: the
    API validates its query parameters before they get here)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a whole number >= 0, not {offset!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_PAGE}, not {limit!r}")
    return offset, limit
