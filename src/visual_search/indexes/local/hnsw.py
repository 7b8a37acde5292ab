"""Approximate nearest neighbours for large embedded indexes: a faiss HNSW graph saved as a sidecar file."""

from __future__ import annotations

import functools
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIDECAR_PREFIX = "hnsw-"
SIDECAR_SUFFIX = ".faiss"


@dataclass(frozen=True)
class HnswParams:
    """HNSW knobs. `m`: links per node (memory and recall grow with it); `ef_construction`: build effort;
    `ef_search`: candidates explored per query (recall against latency; raised to the fetch size if smaller).

    The defaults reach recall@10 >= 0.95 against exact search on clustered 1280-d unit vectors (bench/bench_knn.py).
    """

    m: int = 32
    ef_construction: int = 80
    ef_search: int = 128


@functools.cache
def faiss_available() -> bool:
    """faiss-cpu is an optional dependency (the `local` extra); without it every search is exact."""
    return importlib.util.find_spec("faiss") is not None


class HnswGraph:
    """An inner-product HNSW graph over unit vectors, identified by seq, covering every seq up to `watermark`.

    faiss HNSW cannot remove points: a seq later replaced or deleted stays in the graph as a tombstone, which
    the caller filters out (and rebuilds the graph when tombstones grow).
    """

    def __init__(self, index, watermark: int, params: HnswParams):
        self._index = index
        self.watermark = watermark
        self.params = params

    @classmethod
    def empty(cls, dimension: int, params: HnswParams) -> HnswGraph:
        import faiss  # imported here: optional, and slow to import for processes that never need it

        graph = faiss.IndexHNSWFlat(dimension, params.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = params.ef_construction
        return cls(faiss.IndexIDMap2(graph), 0, params)

    @classmethod
    def load(cls, path: Path, watermark: int, params: HnswParams) -> HnswGraph:
        import faiss

        return cls(faiss.read_index(str(path)), watermark, params)

    @property
    def size(self) -> int:
        """Points in the graph, tombstones included."""
        return int(self._index.ntotal)

    def add(self, seqs: np.ndarray, vectors: np.ndarray, watermark: int) -> None:
        """Add unit vectors float32 (n, dimension) under their seqs; the graph then covers seqs up to `watermark`."""
        if len(seqs):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), seqs.astype(np.int64))
        self.watermark = watermark

    def search(self, query: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to `fetch` approximate nearest (seqs, scores), descending score, tombstones included."""
        import faiss

        fetch = min(fetch, self.size)
        if fetch <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        faiss.downcast_index(self._index.index).hnsw.efSearch = max(self.params.ef_search, fetch)
        scores, seqs = self._index.search(query.reshape(1, -1), fetch)
        found = seqs[0] >= 0  # faiss pads with -1 when the graph yields fewer than `fetch`
        return seqs[0][found], scores[0][found]

    def save(self, directory: Path) -> str:
        """Write the graph under a new file name, atomically (tmp, fsync, rename); returns the name."""
        import faiss

        name = f"{SIDECAR_PREFIX}{self.watermark}-{time.time_ns()}{SIDECAR_SUFFIX}"
        temporary = directory / (name + ".tmp")
        faiss.write_index(self._index, str(temporary))
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, directory / name)
        directory_descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_descriptor)  # makes the rename itself durable
        finally:
            os.close(directory_descriptor)
        return name


def load_sidecar(directory: Path, name: str, watermark: int, params: HnswParams) -> HnswGraph | None:
    """The graph saved as `name`, or None when there is none or the writer has just replaced (deleted) it."""
    if not name or not faiss_available():
        return None
    try:
        return HnswGraph.load(directory / name, watermark, params)
    except (OSError, RuntimeError):  # faiss reports a vanished file as RuntimeError
        return None


def remove_sidecars(directory: Path, keep: str) -> None:
    """Delete graph files other than `keep`: replaced ones, and leftovers of a crash during a save."""
    for path in directory.glob(f"{SIDECAR_PREFIX}*{SIDECAR_SUFFIX}*"):
        if path.name != keep:
            path.unlink(missing_ok=True)
