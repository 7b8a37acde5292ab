"""The compact copy of an embedded index's vectors: float16 rows in one file that searches read row by row.

SQLite keeps every vector as float32, durably; loading a million of them from there would copy 5 GB into each
process. This file holds the rows live when it was written, as float16 (half the bytes, within 5e-4 of each
cosine), in ascending seq order. Searches read only the rows they re-rank (pread: they stay in the page
cache, which every process shares and the kernel may reclaim, not in the process). It is not memory-mapped:
on this kernel (6.18, ext4 large folios) touching one mapped row mapped its whole folio, ~1.5 MB, into the
process, so 200 queries made the entire file resident. Opening reads only the seqs (8 bytes a row).
Layout: a 64-byte header (magic, format, dimension, rows), the vectors, then their int64 seqs.
A file is written once under a new name (tmp, fsync, rename) and never modified, so a reader mapping it can
never see a half-written row; the writer names it in the database only once it is complete.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

VECTOR_FILE_PREFIX = "vectors-"
VECTOR_FILE_SUFFIX = ".f16"
_MAGIC = b"VSF16\x00\x00\x01"
_HEADER = struct.Struct("<8sQQ40x")  # magic, dimension, rows; padded to 64 bytes so the rows stay aligned


class VectorFileError(OSError):
    """The file is missing, truncated or not a vector file."""


def write_vector_file(
    directory: Path, batches: Iterable[tuple[np.ndarray, np.ndarray]], dimension: int, tag: int
) -> str:
    """Stream (seqs, float vectors) batches, ascending by seq, into a new file; returns its name."""
    name = f"{VECTOR_FILE_PREFIX}{tag}-{time.time_ns()}{VECTOR_FILE_SUFFIX}"
    temporary = directory / (name + ".tmp")
    seq_parts: list[np.ndarray] = []
    with open(temporary, "wb") as out:
        out.write(_HEADER.pack(_MAGIC, dimension, 0))
        for seqs, vectors in batches:
            out.write(np.ascontiguousarray(vectors, dtype=np.float16).tobytes())
            seq_parts.append(np.asarray(seqs, dtype=np.int64))
        seqs = np.concatenate(seq_parts) if seq_parts else np.empty(0, dtype=np.int64)
        out.write(seqs.tobytes())
        out.seek(0)
        out.write(_HEADER.pack(_MAGIC, dimension, len(seqs)))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, directory / name)
    fsync_directory(directory)
    return name


class VectorFile:
    """One published vector file, open for reading rows by number. Raises VectorFileError when it is missing or
    incomplete. The descriptor keeps the file readable after the writer deletes it (POSIX), until close()."""

    def __init__(self, path: Path, dimension: int):
        try:
            self._descriptor = os.open(path, os.O_RDONLY)
        except OSError as error:
            raise VectorFileError(f"cannot open vector file {path}: {error}") from error
        try:
            magic, stored_dimension, rows = _HEADER.unpack(
                os.pread(self._descriptor, _HEADER.size, 0).ljust(_HEADER.size, b"\0")
            )
            expected = _HEADER.size + rows * dimension * 2 + rows * 8
            if magic != _MAGIC or stored_dimension != dimension or os.fstat(self._descriptor).st_size != expected:
                raise VectorFileError(f"{path} is not a complete vector file of dimension {dimension}")
            self.rows, self.dimension, self._row_bytes = rows, dimension, dimension * 2
            seqs_at = _HEADER.size + rows * self._row_bytes
            self.seqs = np.frombuffer(os.pread(self._descriptor, rows * 8, seqs_at), dtype=np.int64).copy()
        except BaseException:
            self.close()
            raise

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """float16 (len(rows), dimension) of these rows, in the order given."""
        size, descriptor = self._row_bytes, self._descriptor
        data = b"".join(os.pread(descriptor, size, _HEADER.size + int(row) * size) for row in rows)
        return np.frombuffer(data, dtype=np.float16).reshape(len(rows), self.dimension)

    def read_block(self, start: int, end: int) -> np.ndarray:
        """float16 (end - start, dimension): rows start..end-1 in one read."""
        data = os.pread(self._descriptor, (end - start) * self._row_bytes, _HEADER.size + start * self._row_bytes)
        return np.frombuffer(data, dtype=np.float16).reshape(end - start, self.dimension)

    def close(self) -> None:
        if self._descriptor >= 0:
            os.close(self._descriptor)
            self._descriptor = -1


def remove_vector_files(directory: Path, keep: str) -> None:
    """Delete vector files other than `keep`: replaced ones and leftovers of a crash during a write.

    A reader that still has a deleted file open keeps reading it (POSIX keeps the inode until closed)."""
    for path in directory.glob(f"{VECTOR_FILE_PREFIX}*{VECTOR_FILE_SUFFIX}*"):
        if path.name != keep:
            path.unlink(missing_ok=True)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
