"""Reads catalogue CSVs: a `path` column (relative to the CSV's folder), a `label` column, the optional product
columns (title, price, currency, product_url, brand; checked by core/products.py), and any other columns, which
become string attributes.

Whatever the file holds, the answer is the entries or one InvalidRequestError naming the file and the line: the
file is opened without blocking (a FIFO or device is refused, never read), bounded in size, decoded as UTF-8 with
the offending byte named, and every field bounded in length (a field of 200,000 characters is a message, not
csv's `field larger than field limit`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from visual_search.core.errors import InvalidRequestError, NotFoundError
from visual_search.core.local_files import read_regular_file
from visual_search.core.products import product_from_columns
from visual_search.core.records import PRODUCT_FIELDS, Product
from visual_search.core.text_rules import checked_attributes, checked_label, checked_text

MAX_CSV_BYTES = 256 * 1024 * 1024  # a 1,000,000-row catalogue with long titles is well below
MAX_PATH_CHARS = 4096  # PATH_MAX


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
        raw = read_regular_file(csv_path, max_bytes=MAX_CSV_BYTES)
    except (InvalidRequestError, NotFoundError) as error:
        raise InvalidRequestError(f"cannot read {csv_path}: {error.message}") from None
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InvalidRequestError(
            f"{csv_path}, line {line}: not UTF-8 (byte 0x{raw[error.start]:02X} at offset {error.start}); "
            "save the CSV as UTF-8"
        ) from None
    # strict: a quote that never closes is an error, not a field that swallows the rest of the file.
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        return _entries(reader, csv_path)
    except csv.Error as error:
        line = min(reader.line_num + 1, text.count("\n") + 1)  # the row being read, which csv has not counted yet
        problem = "a field is too long" if "field limit" in str(error) else "not a well-formed CSV row"
        raise InvalidRequestError(f"{csv_path}, line {line}: {problem} ({error})") from None


def _entries(reader: csv.DictReader, csv_path: Path) -> list[CatalogueEntry]:
    columns = reader.fieldnames or []
    if "path" not in columns:
        raise InvalidRequestError(f"{csv_path} needs a header row with a 'path' column (and usually 'label')")
    base = csv_path.resolve().parent
    entries = []
    not_attributes = {"path", "label", *PRODUCT_FIELDS}
    for row in reader:
        listed = (row.get("path") or "").strip()
        if not listed:
            continue
        where = f"{csv_path}, line {reader.line_num}"
        try:
            checked_text(listed, "path", MAX_PATH_CHARS, allow_joiners=False)
            label = checked_label(row.get("label"))
            attributes = checked_attributes(
                {
                    name: value
                    for name, value in row.items()
                    if name not in not_attributes and name is not None and value not in (None, "")
                }
            )
        except InvalidRequestError as error:
            raise InvalidRequestError(f"{where}: {error.message}", code="invalid_product") from None
        entries.append(
            CatalogueEntry(
                path=(base / listed).resolve(),
                label=label,
                attributes=attributes,
                listed_path=listed,
                product=product_from_columns(row, where=where),
            )
        )
    return entries
