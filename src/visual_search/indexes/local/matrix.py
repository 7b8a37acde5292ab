"""The in-memory copy of an embedded index's vectors, searched exactly with one matrix-vector product."""

from __future__ import annotations

import numpy as np

# Gathering a subset copies it; beyond this fraction of rows a masked full product is cheaper.
_GATHER_FRACTION = 0.25


class VectorMatrix:
    """Live unit vectors, float32 (rows, dimension), in ascending seq order so a seq finds its row by bisection.

    Removed rows stay as dead slots until more than a quarter of the rows are dead, then are compacted away;
    callers therefore address vectors by seq, never by row.
    """

    def __init__(self, dimension: int):
        self.dimension = dimension
        self._vectors = np.empty((0, dimension), dtype=np.float32)
        self._seqs = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)
        self._rows = 0
        self.live_count = 0

    @property
    def last_seq(self) -> int:
        return int(self._seqs[self._rows - 1]) if self._rows else 0

    def clear(self) -> None:
        self.__init__(self.dimension)

    def reserve(self, rows: int) -> None:
        """Make room for `rows` more rows (one allocation for a full load instead of repeated growth)."""
        needed = self._rows + rows
        if needed <= len(self._seqs):
            return
        capacity = max(needed, int(len(self._seqs) * 1.5))
        vectors = np.empty((capacity, self.dimension), dtype=np.float32)
        vectors[: self._rows] = self._vectors[: self._rows]
        self._vectors = vectors
        self._seqs = np.resize(self._seqs, capacity)
        self._alive = np.resize(self._alive, capacity)

    def append(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows whose seqs are all above `last_seq`, ascending."""
        self.reserve(len(seqs))
        end = self._rows + len(seqs)
        self._vectors[self._rows : end] = vectors
        self._seqs[self._rows : end] = seqs
        self._alive[self._rows : end] = True
        self._rows = end
        self.live_count += len(seqs)

    def remove(self, seqs: list[int]) -> None:
        rows = self.rows_of(np.asarray(seqs, dtype=np.int64))
        self._alive[rows] = False
        self.live_count -= len(rows)
        if self._rows - self.live_count > max(1024, self._rows // 4):
            self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._rows])
        self._vectors = self._vectors[keep]
        self._seqs = self._seqs[keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self._rows = len(keep)

    def rows_of(self, seqs: np.ndarray) -> np.ndarray:
        """Rows of the live seqs among `seqs` (unknown or removed seqs are left out)."""
        rows = np.searchsorted(self._seqs[: self._rows], seqs)
        found = rows < self._rows
        rows = rows[found]
        return rows[(self._seqs[rows] == seqs[found]) & self._alive[rows]]

    def live_mask(self, seqs: np.ndarray) -> np.ndarray:
        """bool (len(seqs),): which of `seqs` are live rows."""
        rows = np.minimum(np.searchsorted(self._seqs[: self._rows], seqs), max(self._rows - 1, 0))
        if not self._rows:
            return np.zeros(len(seqs), dtype=bool)
        return (self._seqs[rows] == seqs) & self._alive[rows]

    def live_count_after(self, seq: int) -> int:
        start = int(np.searchsorted(self._seqs[: self._rows], seq, side="right"))
        return int(np.count_nonzero(self._alive[start : self._rows]))

    def top_k(
        self, query: np.ndarray, k: int, *, only_seqs: np.ndarray | None = None, after_seq: int = 0,
        excluded_seqs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact best k as (seqs, scores), descending score; ties go to the older row.

        `only_seqs` restricts to those seqs, `after_seq` to rows added after it; `excluded_seqs` are skipped.
        """
        start = int(np.searchsorted(self._seqs[: self._rows], after_seq, side="right"))
        eligible = self._alive[: self._rows].copy()
        eligible[:start] = False
        if excluded_seqs is not None and len(excluded_seqs):
            eligible[self.rows_of(excluded_seqs)] = False
        if only_seqs is not None:
            allowed = self.rows_of(only_seqs)
            allowed = allowed[eligible[allowed]]
            if len(allowed) <= _GATHER_FRACTION * (self._rows - start):
                return self._best(self._vectors[allowed] @ query, self._seqs[allowed], k)
            wanted = np.zeros(self._rows, dtype=bool)
            wanted[allowed] = True
            eligible &= wanted
        scores = self._vectors[start : self._rows] @ query
        scores[~eligible[start:]] = -np.inf
        return self._best(scores, self._seqs[start : self._rows], k)

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
