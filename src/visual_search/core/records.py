"""Value objects passed between the ports: what an indexed image is, and what a search returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

MAX_K = 100  # the most results one search may ask for, on every transport


@dataclass(frozen=True)
class ImageRecord:
    """One indexed image's metadata; its vector is stored beside it by the VectorIndex.

    `key` is the stable identity (a path relative to the indexed folder, or an S3 object key): indexing the
    same key again replaces the record. `uri` says where the bytes live (an absolute file path or s3://...).
    `content_hash` is the hex SHA-256 of the file's bytes. `indexed_at` is seconds since the epoch (UTC).
    """

    key: str
    uri: str
    content_hash: str
    width: int
    height: int
    label: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    indexed_at: float = 0.0


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
