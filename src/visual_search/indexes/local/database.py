"""SQLite storage of an embedded index: records, float32 vectors and a change log, committed atomically (WAL)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from visual_search.core.records import ImageRecord, SearchFilters
from visual_search.indexes.local.schema import (
    RECORD_COLUMNS,
    SCHEMA,
    chunks,
    product_json,
    record_of_row,
    where_clause,
)

DATABASE_FILE_NAME = "index.sqlite3"
FORMAT_VERSION = "1"
# The change log is trimmed once it holds this many removals; readers further behind reload everything.
_REMOVAL_LOG_LIMIT = 100_000
_REMOVAL_LOG_KEPT = 20_000


class IndexDatabase:
    """One connection to the database of an index directory; not thread-safe (LocalIndex serialises calls).

    Reads that must agree with each other run inside `snapshot()`; writes inside `write()`, which bumps the
    `generation` counter that readers compare to decide whether to refresh.
    """

    def __init__(self, path: Path):
        self.path = path
        # isolation_level=None: transactions are exactly the BEGIN/COMMIT issued below, nothing implicit.
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self.connection.execute("PRAGMA busy_timeout = 30000")
        # FULL: a returned upsert survives power loss too, at one fsync per batch (cheap with WAL).
        self.connection.execute("PRAGMA synchronous = FULL")
        self._add_product_column()

    def _add_product_column(self) -> None:
        """Migration: indexes made before product data lack images.product; adding a NULL column keeps every row."""
        columns = {row[1] for row in self.connection.execute("PRAGMA table_info(images)")}
        if columns and "product" not in columns:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                if "product" not in {row[1] for row in self.connection.execute("PRAGMA table_info(images)")}:
                    self.connection.execute("ALTER TABLE images ADD COLUMN product TEXT")
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def create_schema(self, model_id: str, dimension: int, created_at: float) -> None:
        # Page size only takes effect before the first table; 16 KiB packs three 1280-d vectors per page.
        self.connection.execute("PRAGMA page_size = 16384")
        self.connection.execute("PRAGMA journal_mode = WAL")
        with self.write():
            # Statement by statement: executescript would COMMIT the open transaction first.
            for statement in filter(str.strip, SCHEMA.split(";")):
                self.connection.execute(statement)
            self.connection.executemany(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)",
                [
                    ("format_version", FORMAT_VERSION),
                    ("model_id", model_id),
                    ("dimension", str(dimension)),
                    ("created_at", repr(created_at)),
                    ("generation", "0"),
                    ("removals_pruned_through", "0"),
                    ("record_count", "0"),
                    ("ann_file", ""),
                    ("ann_watermark", "0"),
                    ("ann_size", "0"),
                ],
            )

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self.connection.execute("BEGIN")
        try:
            yield
        finally:
            self.connection.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so a transaction never fails half-way on SQLITE_BUSY.
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.connection.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'generation'")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def meta(self) -> dict[str, str]:
        return dict(self.connection.execute("SELECT name, value FROM meta"))

    def set_meta(self, values: dict[str, str]) -> None:
        self.connection.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", values.items())

    def generation(self) -> int:
        return int(self.connection.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()[0])

    def seqs_of_keys(self, keys: Sequence[str]) -> list[int]:
        seqs: list[int] = []
        for chunk in chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            seqs += [row[0] for row in self.connection.execute(f"SELECT seq FROM images WHERE key IN ({marks})", chunk)]
        return seqs

    def replace(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        """Insert records under fresh seqs, removing any older row of the same key. Call inside write()."""
        self.remove_seqs(self.seqs_of_keys([record.key for record in records]))
        first_seq = self.last_seq() + 1
        seqs = range(first_seq, first_seq + len(records))
        self.connection.executemany(
            f"INSERT INTO images ({RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    seq,
                    r.key,
                    r.uri,
                    r.content_hash,
                    int(r.width),
                    int(r.height),
                    r.label,
                    json.dumps(dict(r.attributes), sort_keys=True),
                    float(r.indexed_at),
                    product_json(r),
                )
                for seq, r in zip(seqs, records)
            ],
        )
        self.connection.executemany(
            "INSERT INTO vectors (seq, vector) VALUES (?, ?)", [(seq, v.tobytes()) for seq, v in zip(seqs, vectors)]
        )
        self.connection.executemany(
            "INSERT INTO image_attributes (name, value, seq) VALUES (?, ?, ?)",
            [(name, value, seq) for seq, r in zip(seqs, records) for name, value in r.attributes.items()],
        )
        self._add_to_count(len(records))

    def _add_to_count(self, change: int) -> None:
        # A counter instead of COUNT(*), which scans the table: count() and the upsert path stay O(1).
        self.connection.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE name = 'record_count'", (change,)
        )

    def remove_seqs(self, seqs: Sequence[int]) -> None:
        """Delete these rows and log their seqs for readers. Call inside write()."""
        params = [(seq,) for seq in seqs]
        for table in ("images", "vectors", "image_attributes"):
            self.connection.executemany(f"DELETE FROM {table} WHERE seq = ?", params)
        self.connection.executemany("INSERT INTO removals (seq) VALUES (?)", params)
        self._add_to_count(-len(params))
        self._trim_removal_log()

    def _trim_removal_log(self) -> None:
        oldest, newest = self.connection.execute("SELECT MIN(id), MAX(id) FROM removals").fetchone()
        if oldest is None or newest - oldest < _REMOVAL_LOG_LIMIT:
            return
        pruned_through = newest - _REMOVAL_LOG_KEPT
        self.connection.execute("DELETE FROM removals WHERE id <= ?", (pruned_through,))
        self.set_meta({"removals_pruned_through": str(pruned_through)})

    def removals_after(self, removal_id: int) -> tuple[list[int], int]:
        """Seqs removed after log entry `removal_id`, and the newest entry id (unchanged when none)."""
        rows = self.connection.execute(
            "SELECT id, seq FROM removals WHERE id > ? ORDER BY id", (removal_id,)
        ).fetchall()
        return [seq for _, seq in rows], (rows[-1][0] if rows else removal_id)

    def last_removal_id(self) -> int:
        return self.connection.execute("SELECT COALESCE(MAX(id), 0) FROM removals").fetchone()[0]

    def vectors_after(
        self, seq: int, dimension: int, batch: int = 8192
    ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
        """Live (seqs int64 (n,), vectors float32 (n, dimension)) with seq above `seq`, ascending, in batches."""
        cursor = self.connection.execute("SELECT seq, vector FROM vectors WHERE seq > ? ORDER BY seq", (seq,))
        while rows := cursor.fetchmany(batch):
            seqs = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            blob = b"".join(row[1] for row in rows)
            yield seqs, np.frombuffer(blob, dtype=np.float32).reshape(len(rows), dimension)

    def vectors_by_seq(self, seqs: Sequence[int], dimension: int) -> dict[int, np.ndarray]:
        """seq -> float32 (dimension,) of the live ones among `seqs`: the full-precision re-score of a few hits."""
        found: dict[int, np.ndarray] = {}
        for chunk in chunks(list(seqs)):
            marks = ",".join("?" * len(chunk))
            for seq, blob in self.connection.execute(f"SELECT seq, vector FROM vectors WHERE seq IN ({marks})", chunk):
                found[seq] = np.frombuffer(blob, dtype=np.float32, count=dimension)
        return found

    def live_seqs_through(self, seq: int) -> np.ndarray:
        """Ascending int64 seqs of the live vectors with seq up to `seq`."""
        rows = self.connection.execute("SELECT seq FROM vectors WHERE seq <= ? ORDER BY seq", (seq,))
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def vector_of_key(self, key: str) -> bytes | None:
        row = self.connection.execute(
            "SELECT vector FROM vectors JOIN images USING (seq) WHERE images.key = ?", (key,)
        ).fetchone()
        return row[0] if row else None

    def records_by_seq(self, seqs: Sequence[int]) -> dict[int, ImageRecord]:
        found: dict[int, ImageRecord] = {}
        for chunk in chunks(list(seqs)):
            marks = ",".join("?" * len(chunk))
            for row in self.connection.execute(f"SELECT {RECORD_COLUMNS} FROM images WHERE seq IN ({marks})", chunk):
                found[row[0]] = record_of_row(row)
        return found

    def records_by_key(self, keys: Sequence[str]) -> dict[str, ImageRecord]:
        found: dict[str, ImageRecord] = {}
        for chunk in chunks(list(dict.fromkeys(keys))):
            marks = ",".join("?" * len(chunk))
            for row in self.connection.execute(f"SELECT {RECORD_COLUMNS} FROM images WHERE key IN ({marks})", chunk):
                found[row[1]] = record_of_row(row)
        return found

    def seqs_matching(self, filters: SearchFilters) -> np.ndarray:
        """Ascending int64 seqs of the records the filters accept."""
        where, params = where_clause(filters)
        rows = self.connection.execute(f"SELECT seq FROM images WHERE {where} ORDER BY seq", params)
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def records_page(self, filters: SearchFilters | None, offset: int, limit: int) -> tuple[list[ImageRecord], int]:
        """The records the filters accept, ordered by key, from `offset`; and how many they accept in all."""
        where, params = where_clause(filters or SearchFilters())
        total = self.connection.execute(f"SELECT COUNT(*) FROM images WHERE {where}", params).fetchone()[0]
        rows = self.connection.execute(
            f"SELECT {RECORD_COLUMNS} FROM images WHERE {where} ORDER BY key LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [record_of_row(row) for row in rows], int(total)

    def keys_by_seq(self, seqs: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in chunks(list(seqs)):
            marks = ",".join("?" * len(chunk))
            found.update(self.connection.execute(f"SELECT seq, key FROM images WHERE seq IN ({marks})", chunk))
        return found

    def count(self) -> int:
        return int(self.connection.execute("SELECT value FROM meta WHERE name = 'record_count'").fetchone()[0])

    def last_seq(self) -> int:
        row = self.connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'images'").fetchone()
        return row[0] if row else 0

    def count_vectors_through(self, seq: int) -> int:
        return self.connection.execute("SELECT COUNT(*) FROM vectors WHERE seq <= ?", (seq,)).fetchone()[0]

    def label_counts(self) -> dict[str, int]:
        rows = self.connection.execute("SELECT label, COUNT(*) FROM images WHERE label IS NOT NULL GROUP BY label")
        return dict(rows)

    def integrity_problems(self, dimension: int) -> list[str]:
        """Structural problems: SQLite's own check, rows without vectors (or the reverse), wrong vector sizes."""
        problems = [row[0] for row in self.connection.execute("PRAGMA quick_check") if row[0] != "ok"]
        counted = self.connection.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        if counted != self.count():
            problems.append(f"record_count says {self.count()} but there are {counted} records")
        checks = {
            "records without a vector": "SELECT COUNT(*) FROM images LEFT JOIN vectors USING (seq) WHERE vectors.seq IS NULL",
            "vectors without a record": "SELECT COUNT(*) FROM vectors LEFT JOIN images USING (seq) WHERE images.seq IS NULL",
            f"vectors not of {dimension} float32": f"SELECT COUNT(*) FROM vectors WHERE length(vector) != {4 * dimension}",
        }
        for problem, query in checks.items():
            found = self.connection.execute(query).fetchone()[0]
            if found:
                problems.append(f"{found} {problem}")
        return problems
