"""The vectors a process searches exactly: a float16 base read from disk plus an in-memory float32 tail.

The base is the vector file the writer last published (rows up to its watermark, read row by row as searches
need them, never loaded whole); the tail holds the rows committed since, read from SQLite. A small index has no base at all, so below the ANN
threshold every vector is float32 in memory and search is as exact as before.
"""

from __future__ import annotations

import numpy as np

from visual_search.indexes.local.vector_file import VectorFile

# Gathering a subset copies it; beyond this fraction of rows a masked full product is cheaper.
_GATHER_FRACTION = 0.25
# float16 rows are converted to float32 this many at a time (10 MB at 1280-d) during a full scan.
_SCAN_BLOCK = 2048


class VectorMatrix:
    """Live unit vectors in ascending seq order, so a seq finds its row by bisection.

    Rows [0, base) are the file's, rows [base, rows) the tail. Removed rows stay as dead slots (the tail
    is compacted once more than a quarter of it is dead; the base only when the writer publishes a new file),
    so callers address vectors by seq, never by row.
    """

    def __init__(self, dimension: int):
        self.dimension = dimension
        self._reset()

    def _reset(self) -> None:
        dimension = self.dimension
        self._base: VectorFile | None = None
        self._tail = np.empty((0, dimension), dtype=np.float32)
        self._seqs = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)
        self._rows = 0
        self.live_count = 0

    @property
    def base_rows(self) -> int:
        return self._base.rows if self._base is not None else 0

    @property
    def last_seq(self) -> int:
        return int(self._seqs[self._rows - 1]) if self._rows else 0

    def clear(self) -> None:
        if self._base is not None:
            self._base.close()
        self._reset()

    def set_base(self, base: VectorFile) -> None:
        """Start over from a vector file (which this matrix then owns and closes); the tail is appended afterwards."""
        self.clear()
        self._base = base
        self._seqs = base.seqs.copy()
        self._alive = np.ones(base.rows, dtype=bool)
        self._rows = self.live_count = base.rows

    def reserve(self, rows: int) -> None:
        """Make room for `rows` more tail rows (one allocation for a full load instead of repeated growth)."""
        needed = self._rows + rows
        if needed <= len(self._seqs):
            return
        capacity = max(needed, int(len(self._seqs) * 1.5))
        tail = np.empty((capacity - self.base_rows, self.dimension), dtype=np.float32)
        tail[: self._rows - self.base_rows] = self._tail[: self._rows - self.base_rows]
        self._tail = tail
        self._seqs = np.resize(self._seqs, capacity)
        self._alive = np.resize(self._alive, capacity)

    def append(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        """Add tail rows whose seqs are all above `last_seq`, ascending."""
        self.reserve(len(seqs))
        end = self._rows + len(seqs)
        self._tail[self._rows - self.base_rows : end - self.base_rows] = vectors
        self._seqs[self._rows : end] = seqs
        self._alive[self._rows : end] = True
        self._rows = end
        self.live_count += len(seqs)

    def remove(self, seqs: list[int]) -> None:
        rows = self.rows_of(np.asarray(seqs, dtype=np.int64))
        self._alive[rows] = False
        self.live_count -= len(rows)
        tail_dead = np.count_nonzero(~self._alive[self.base_rows : self._rows])
        if tail_dead > max(1024, (self._rows - self.base_rows) // 4):
            self._compact_tail()

    def _compact_tail(self) -> None:
        base = self.base_rows
        keep = base + np.flatnonzero(self._alive[base : self._rows])
        self._tail = self._tail[keep - base]
        self._seqs = np.concatenate([self._seqs[:base], self._seqs[keep]])
        self._alive = np.concatenate([self._alive[:base], np.ones(len(keep), dtype=bool)])
        self._rows = len(self._seqs)

    def rows_of(self, seqs: np.ndarray) -> np.ndarray:
        """Rows of the live seqs among `seqs` (unknown or removed seqs are left out)."""
        rows = np.searchsorted(self._seqs[: self._rows], seqs)
        found = rows < self._rows
        rows = rows[found]
        return rows[(self._seqs[rows] == seqs[found]) & self._alive[rows]]

    def live_mask(self, seqs: np.ndarray) -> np.ndarray:
        """bool (len(seqs),): which of `seqs` are live rows."""
        if not self._rows:
            return np.zeros(len(seqs), dtype=bool)
        rows = np.minimum(np.searchsorted(self._seqs[: self._rows], seqs), self._rows - 1)
        return (self._seqs[rows] == seqs) & self._alive[rows]

    def live_count_after(self, seq: int) -> int:
        start = int(np.searchsorted(self._seqs[: self._rows], seq, side="right"))
        return int(np.count_nonzero(self._alive[start : self._rows]))

    def vectors_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """float32 (len(rows), dimension) of these rows (base rows widened from float16)."""
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        in_base = rows < self.base_rows
        if in_base.any():
            assert self._base is not None  # rows below base_rows exist only with a base
            out[in_base] = self._base.read_rows(rows[in_base])
        if (~in_base).any():
            out[~in_base] = self._tail[rows[~in_base] - self.base_rows]
        return out

    def top_k(
        self,
        query: np.ndarray,
        k: int,
        *,
        only_seqs: np.ndarray | None = None,
        after_seq: int = 0,
        excluded_seqs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact best k as (seqs, scores), descending score; ties go to the older row.

        `only_seqs` restricts to those seqs, `after_seq` to rows added after it; `excluded_seqs` are skipped.
        """
        start = int(np.searchsorted(self._seqs[: self._rows], after_seq, side="right"))
        if start >= self._rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        # Everything below works on rows [start, rows): the tail after a graph is usually small or empty, and a
        # copy of the whole alive mask (1 MB at 1M rows) cost more than the rest of such a call.
        eligible = self._alive[start : self._rows].copy()
        if excluded_seqs is not None and len(excluded_seqs):
            excluded_rows = self.rows_of(excluded_seqs)
            eligible[excluded_rows[excluded_rows >= start] - start] = False
        if only_seqs is not None:
            allowed = self.rows_of(only_seqs[np.searchsorted(only_seqs, after_seq, side="right") :])  # ascending
            allowed = allowed[eligible[allowed - start]]
            if len(allowed) <= _GATHER_FRACTION * (self._rows - start):
                return self._best(self.vectors_of_rows(allowed) @ query, self._seqs[allowed], k)
            wanted = np.zeros(self._rows - start, dtype=bool)
            wanted[allowed - start] = True
            eligible &= wanted
        scores = self._scan(query, start)
        scores[~eligible] = -np.inf
        return self._best(scores, self._seqs[start : self._rows], k)

    def _scan(self, query: np.ndarray, start: int) -> np.ndarray:
        """Scores of rows [start, rows) against `query`."""
        scores = np.empty(self._rows - start, dtype=np.float32)
        base = self.base_rows
        for block in range(start, base, _SCAN_BLOCK):
            assert self._base is not None  # base_rows > 0 only with a base
            end = min(block + _SCAN_BLOCK, base)
            scores[block - start : end - start] = self._base.read_block(block, end).astype(np.float32) @ query
        tail_from = max(start, base)
        scores[tail_from - start :] = self._tail[tail_from - base : self._rows - base] @ query
        return scores

    @staticmethod
    def _best(scores: np.ndarray, seqs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(scores))
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        # lexsort: primary key last; the stable tie-break on seq keeps results deterministic.
        order = candidates[np.lexsort((seqs[candidates], -scores[candidates]))]
        order = order[np.isfinite(scores[order])]
        return seqs[order], scores[order]
