"""Reads catalogue CSVs: a `path` column (relative to the CSV's folder), a `label` column, and any other
columns, which become string attributes."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from visual_search.core.errors import InvalidRequestError


@dataclass(frozen=True)
class CatalogueEntry:
    path: Path  # absolute, for files
    label: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    listed_path: str = ""  # as written in the CSV: an object key, for s3:// catalogues


def read_catalogue_csv(csv_path: str | Path) -> list[CatalogueEntry]:
    """Entries in file order. Empty labels become None. Raises InvalidRequestError for a CSV without `path`."""
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
        for row in reader:
            if not (row.get("path") or "").strip():
                continue
            attributes = {
                name: value
                for name, value in row.items()
                if name not in ("path", "label") and name is not None and value not in (None, "")
            }
            entries.append(
                CatalogueEntry(
                    path=(base / row["path"].strip()).resolve(),
                    label=(row.get("label") or "").strip() or None,
                    attributes=attributes,
                    listed_path=row["path"].strip(),
                )
            )
    return entries
