"""Reads catalogue CSVs: a `path` column (relative to the CSV's folder), a `label` column, the optional product
columns (title, price, currency, product_url, brand; checked by core/products.py), and any other columns, which
become string attributes."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from visual_search.core.errors import InvalidRequestError
from visual_search.core.products import product_from_columns
from visual_search.core.records import PRODUCT_FIELDS, Product


@dataclass(frozen=True)
class CatalogueEntry:
    path: Path  # absolute, for files
    label: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    listed_path: str = ""  # as written in the CSV: an object key, for s3:// catalogues
    product: Product = field(default_factory=Product)


def read_catalogue_csv(csv_path: str | Path) -> list[CatalogueEntry]:
    """Entries in file order. Empty labels become None. Raises InvalidRequestError for a CSV without `path`, and
    for a malformed product value (naming its line), before any entry is returned."""
    csv_path = Path(csv_path)
    try:
        handle = open(csv_path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if "path" not in columns:
            raise InvalidRequestError(f"{csv_path} needs a header row with a 'path' column (and usually 'label')")
        base = csv_path.resolve().parent
        entries = []
        not_attributes = {"path", "label", *PRODUCT_FIELDS}
        for row in reader:
            if not (row.get("path") or "").strip():
                continue
            attributes = {
                name: value
                for name, value in row.items()
                if name not in not_attributes and name is not None and value not in (None, "")
            }
            product = product_from_columns(row, where=f"{csv_path}, line {reader.line_num}")
            entries.append(
                CatalogueEntry(
                    path=(base / row["path"].strip()).resolve(),
                    label=(row.get("label") or "").strip() or None,
                    attributes=attributes,
                    listed_path=row["path"].strip(),
                    product=product,
                )
            )
    return entries
