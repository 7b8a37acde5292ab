"""Approximate nearest neighbours for large embedded indexes: a faiss HNSW graph saved as a sidecar file."""

from __future__ import annotations

import functools
import importlib.util
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visual_search.indexes.local.graph_memory import huge_pages_offered, read_into_huge_pages

SIDECAR_PREFIX = "hnsw-"
SIDECAR_SUFFIX = ".faiss"
_STORAGES = {"SQ8": "QT_8bit", "SQfp16": "QT_fp16", "Flat": ""}
# faiss computes scalar-quantised distances with SIMD only when the dimension is a multiple of the vector width
# (8 floats for AVX2, 16 for AVX-512); any other dimension takes its scalar code. The product's vectors are
# 1332-d (1280 appearance + 52 colour): 1.52 us a distance scalar against 0.30 us padded to 1344 with zeros,
# which leave every inner product unchanged (docs/BENCHMARKS.md, issue 24). A graph is built padded; one saved
# unpadded keeps working, at the old speed, until it is rebuilt.
_SIMD_WIDTH = 16
_FILTERED_EF_FACTOR = 3


def padded_dimension(dimension: int) -> int:
    return -(-dimension // _SIMD_WIDTH) * _SIMD_WIDTH


def _padded(vectors: np.ndarray, width: int) -> np.ndarray:
    """float32 C-contiguous `vectors` (n, d) with zero columns appended up to `width`."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    missing = width - vectors.shape[-1]
    if missing == 0:
        return vectors
    out = np.zeros((vectors.shape[0], width), dtype=np.float32)
    out[:, : vectors.shape[-1]] = vectors
    return out


@dataclass(frozen=True)
class HnswParams:
    """HNSW knobs. `m`: links per node (memory and recall grow with it); `ef_construction`: build effort;
    `ef_search`: candidates explored per query (recall against latency; raised to the fetch size if smaller);
    `storage`: how the graph keeps its vectors: "SQ8" (8-bit scalar quantisation, a quarter of float32; the
    search re-ranks its candidates from the full vectors), "SQfp16" or "Flat" (float32).

    Chosen by measurement on embedding-like 1280-d vectors (bench/bench_scale.py, docs/BENCHMARKS.md "Scale"):
    at 100k, HNSW32+SQ8 with a re-rank reached recall@10 0.97 (ef_search 64) to 0.99 (128) in under 1 ms;
    IVF1024+SQ8 needed nprobe 32 for 0.95 and its scans grow with the catalogue; HNSW16 stayed below 0.95.
    ef_construction 40 because the build is the slow part (80 roughly doubles it). ef_search 96: on the product's
    1332-d vectors, padded (issue 24), it gave recall@10 0.964 at 1M and 0.9885 at 200k with the k+16 re-score,
    where 256 (chosen for the unpadded, scalar-distance graph) cost 2.2x the time for 0.99 and a p95 over 5 ms.
    """

    m: int = 32
    ef_construction: int = 40
    ef_search: int = 96
    storage: str = "SQ8"


@contextmanager
def _single_thread() -> Iterator[None]:
    """One query cannot use more than one thread, but faiss's OpenMP region still wakes (and, on a busy machine,
    waits for) every thread: searching single-threaded took p50 from ~2 ms to ~0.6 ms on the 2-core bench box."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


@functools.cache
def faiss_available() -> bool:
    """faiss-cpu is an optional dependency (the `local` extra); without it every search is exact."""
    return importlib.util.find_spec("faiss") is not None


class HnswGraph:
    """An inner-product HNSW graph over unit vectors, identified by seq, covering every seq up to `watermark`.

    faiss HNSW cannot remove points: a seq later replaced or deleted stays in the graph as a tombstone, which
    the caller filters out (and rebuilds the graph when tombstones grow).
    """

    def __init__(
        self, index, watermark: int, params: HnswParams, *, read_only: bool = False, memory: np.ndarray | None = None
    ):
        self._index = index
        self.watermark = watermark
        self.params = params
        self.read_only = read_only  # its codes are a map of the file or a buffer faiss does not own: never add
        self._memory = memory  # the buffer faiss searches in place (graph_memory.py); it must outlive _index

    @classmethod
    def empty(cls, dimension: int, params: HnswParams) -> HnswGraph:
        import faiss  # imported here: optional, and slow to import for processes that never need it

        if params.storage not in _STORAGES:
            raise ValueError(f"HNSW storage must be one of {sorted(_STORAGES)}, not {params.storage!r}")
        graph: faiss.IndexHNSW
        width = padded_dimension(dimension)
        if params.storage == "Flat":
            graph = faiss.IndexHNSWFlat(width, params.m, faiss.METRIC_INNER_PRODUCT)
        else:
            quantizer = getattr(faiss.ScalarQuantizer, _STORAGES[params.storage])
            graph = faiss.IndexHNSWSQ(width, quantizer, params.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = params.ef_construction
        return cls(faiss.IndexIDMap(graph), 0, params)  # IDMap2's reverse map would cost ~50 B a vector

    @classmethod
    def load(cls, path: Path, watermark: int, params: HnswParams, *, read_only: bool = False) -> HnswGraph:
        """`read_only` (readers, which never add): where the kernel offers transparent huge pages, faiss searches
        the file's bytes read into them, in place (0.72x the search time at 1M, graph_memory.py); elsewhere it
        maps the file (faiss IO_FLAG_MMAP_IFC: a 1M graph opens in 0.08 s and processes share its pages).
        Otherwise faiss reads its own copy, which the writer extends."""
        import faiss

        if read_only and huge_pages_offered():
            try:
                memory = read_into_huge_pages(path)
            except FileNotFoundError:
                raise
            except (OSError, ValueError, MemoryError):  # no room for a private copy: the file map still answers
                return cls(faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC), watermark, params, read_only=True)
            reader = faiss.ZeroCopyIOReader(faiss.swig_ptr(memory), memory.size)  # type: ignore[attr-defined]  # absent from faiss's type stubs
            index = faiss.read_index(reader)
            return cls(index, watermark, params, read_only=True, memory=memory)
        flags = faiss.IO_FLAG_MMAP_IFC if read_only else 0
        return cls(faiss.read_index(str(path), flags), watermark, params, read_only=read_only)

    @property
    def size(self) -> int:
        """Points in the graph, tombstones included."""
        return int(self._index.ntotal)

    def add(self, seqs: np.ndarray, vectors: np.ndarray, watermark: int) -> None:
        """Add unit vectors float32 (n, dimension) under their seqs; the graph then covers seqs up to `watermark`."""
        if self.read_only:
            raise RuntimeError("a read-only graph cannot grow: load it with read_only=False to extend it")
        if not len(seqs):
            self.watermark = watermark
            return
        vectors = _padded(vectors, self._index.d)
        if not self._index.is_trained:
            # The quantiser learns each dimension's range from the first rows; later outliers are clipped,
            # which only costs graph accuracy (the re-rank uses the full vectors).
            self._index.train(vectors)
        self._index.add_with_ids(vectors, seqs.astype(np.int64))
        self.watermark = watermark

    def search(
        self, query: np.ndarray, fetch: int, only_bitmap: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to `fetch` approximate nearest (seqs, scores), descending score, tombstones included.

        `only_bitmap` (bit `seq` set for each allowed seq, little-endian within bytes) restricts the results to
        those seqs during the traversal itself."""
        import faiss

        fetch = min(fetch, self.size)
        if fetch <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        parameters = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # absent from faiss's type stubs; per call: no shared state between threads
        parameters.efSearch = max(self.params.ef_search, fetch)
        if only_bitmap is not None:
            # Walking past non-members makes the candidate list thinner: at 1M and a 10% filter, 1.5x the
            # plain efSearch (144) gave recall@10 0.9345 where the plain search had 0.964 (docs/BENCHMARKS.md,
            # issue 24); a filtered search may take longer, but not find less.
            parameters.efSearch = parameters.efSearch * _FILTERED_EF_FACTOR
            selector = faiss.IDSelectorBitmap(len(only_bitmap), faiss.swig_ptr(only_bitmap))
            parameters.sel = selector  # `selector` and the bitmap must outlive the search: both are locals here
        with _single_thread():
            scores, seqs = self._index.search(_padded(query.reshape(1, -1), self._index.d), fetch, params=parameters)
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


def load_sidecar(
    directory: Path, name: str, watermark: int, params: HnswParams, *, read_only: bool = False
) -> HnswGraph | None:
    """The graph saved as `name`, or None when there is none or the writer has just replaced (deleted) it."""
    if not name or not faiss_available():
        return None
    try:
        return HnswGraph.load(directory / name, watermark, params, read_only=read_only)
    except (OSError, RuntimeError):  # faiss reports a vanished file as RuntimeError
        return None


def remove_sidecars(directory: Path, keep: str) -> None:
    """Delete graph files other than `keep`: replaced ones, and leftovers of a crash during a save."""
    for path in directory.glob(f"{SIDECAR_PREFIX}*{SIDECAR_SUFFIX}*"):
        if path.name != keep:
            path.unlink(missing_ok=True)
