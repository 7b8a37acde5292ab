"""The embedded index's SQLite schema, and how its rows map to records and filters to SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from visual_search.core.records import ImageRecord, Product, SearchFilters

# SQLite allows 32766 parameters; stay far below so one statement never fails on a large batch.
CHUNK = 900

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- a new seq per upsert, never reused: readers load seq > watermark
    key TEXT NOT NULL UNIQUE, uri TEXT NOT NULL, content_hash TEXT NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, label TEXT,
    attributes TEXT NOT NULL, indexed_at REAL NOT NULL,
    product TEXT);  -- JSON of the Product (title, price, ...), NULL when the catalogue has none
CREATE INDEX IF NOT EXISTS images_by_label ON images(label);
-- Vectors apart from metadata, so scanning records for filters and stats stays small.
CREATE TABLE IF NOT EXISTS vectors (seq INTEGER PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS image_attributes (
    name TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (name, value, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS image_attributes_by_seq ON image_attributes(seq);
-- Seqs removed by delete or replace, so a reader can drop them from memory without rescanning.
CREATE TABLE IF NOT EXISTS removals (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL);
"""
RECORD_COLUMNS = "seq, key, uri, content_hash, width, height, label, attributes, indexed_at, product"


def chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def record_of_row(row: tuple) -> ImageRecord:
    _, key, uri, content_hash, width, height, label, attributes, indexed_at, product = row
    return ImageRecord(
        key,
        uri,
        content_hash,
        width,
        height,
        label,
        json.loads(attributes),
        indexed_at,
        Product.from_dict(json.loads(product)) if product else Product(),
    )


def product_json(record: ImageRecord) -> str | None:
    return None if record.product.is_empty else json.dumps(record.product.as_dict(), sort_keys=True)


def where_clause(filters: SearchFilters) -> tuple[str, list]:
    """A WHERE clause over `images` (and its parameters) that accepts what the filters accept."""
    clauses, params = [], []
    if filters.labels:
        clauses.append(f"label IN ({','.join('?' * len(filters.labels))})")
        params += sorted(filters.labels)
    for name, allowed in sorted(filters.attributes.items()):
        values = sorted(allowed)
        clauses.append(
            f"seq IN (SELECT seq FROM image_attributes WHERE name = ? AND value IN ({','.join('?' * len(values))}))"
        )
        params += [name, *values]
    return " AND ".join(clauses) or "1", params
