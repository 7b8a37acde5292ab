"""Embedded index k-NN benchmark: exact vs HNSW query time (p50/p95), recall@10, build and load costs; prints JSON.

Vectors imitate CNN image embeddings (EfficientNet-Lite2 pooled features, 1280-d): non-negative (post-ReLU),
low intrinsic dimension, products in clusters of similar items; queries are "new photos" of catalogue items
(the item's latent code plus noise), so the nearest neighbours are meaningful but not exact duplicates.
A second, harder set (isotropic Gaussian clusters, high intrinsic dimension) is reported at the smallest size.

Run: .venv/bin/python bench/bench_knn.py [--sizes 10000 100000 1000000] [--queries 200] [--output out.json]
Sizes go through LocalIndex (SQLite + HNSW sidecar); sizes above --max-ann-size are measured exact-only on the
in-memory matrix (an HNSW build of 1M x 1280 takes ~20 min on 2 cores), and skipped when memory is short.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

from visual_search.core.records import ImageRecord
from visual_search.indexes.local.hnsw import HnswParams
from visual_search.indexes.local.index import LocalIndex
from visual_search.indexes.local.matrix import VectorMatrix

DIMENSION = 1280
LATENT = 96


class EmbeddingLikeGenerator:
    """Latent product codes (mixture of Gaussians) mapped to 1280-d through a fixed random ReLU layer."""

    def __init__(self, seed: int = 0, clusters: int = 2000):
        rng = np.random.default_rng(seed)
        self.centres = rng.standard_normal((clusters, LATENT)).astype(np.float32)
        self.projection = (rng.standard_normal((LATENT, DIMENSION)) / np.sqrt(LATENT)).astype(np.float32)
        self.bias = np.float32(-0.3)

    def _features(self, latent: np.ndarray) -> np.ndarray:
        features = np.maximum(latent @ self.projection + self.bias, 0)
        return features / np.linalg.norm(features, axis=1, keepdims=True)

    def catalogue(self, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        latent = self.centres[rng.integers(0, len(self.centres), count)]
        latent = latent + 0.6 * rng.standard_normal((count, LATENT)).astype(np.float32)
        return self._features(latent), latent

    def queries(self, catalogue_latent: np.ndarray, count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        picked = catalogue_latent[rng.integers(0, len(catalogue_latent), count)]
        return self._features(picked + 0.35 * rng.standard_normal(picked.shape).astype(np.float32))


def gaussian_clusters(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, DIMENSION)).astype(np.float32)
    vectors = centres[rng.integers(0, 200, count)] + 0.7 * rng.standard_normal((count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def percentiles_ms(durations_s: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(durations_s, 50)) * 1e3, 3),
        "p95_ms": round(float(np.percentile(durations_s, 95)) * 1e3, 3),
    }


def timed_searches(index: LocalIndex, queries: np.ndarray, exact: bool) -> tuple[list[list[str]], dict]:
    index.search(queries[0], 10, exact=exact)  # warm-up: loads the matrix / graph
    results, durations = [], []
    for query in queries:
        started = time.perf_counter()
        hits = index.search(query, 10, exact=exact)
        durations.append(time.perf_counter() - started)
        results.append([hit.record.key for hit in hits])
    return results, percentiles_ms(durations)


def recall_at_10(approximate: list[list[str]], exact: list[list[str]]) -> float:
    return round(sum(len(set(a) & set(e)) for a, e in zip(approximate, exact)) / (10 * len(exact)), 4)


def bench_index(vectors: np.ndarray, queries: np.ndarray, directory: Path, params: HnswParams) -> dict:
    """Upsert through LocalIndex, build the HNSW sidecar, then time exact and approximate searches in a reader."""
    figures: dict = {"count": len(vectors)}
    with LocalIndex(
        directory, model_id="bench", dimension=DIMENSION, writable=True, ann_threshold=len(vectors) + 1, hnsw=params
    ) as writer:
        started = time.perf_counter()
        for start in range(0, len(vectors), 1000):
            chunk = vectors[start : start + 1000]
            records = [ImageRecord(f"k{start + i}", "/x", "0" * 64, 1, 1) for i in range(len(chunk))]
            writer.upsert(records, chunk)
        figures["upsert_s"] = round(time.perf_counter() - started, 2)
        writer.ann_threshold = 1  # now build the graph in one go, as close()/optimize() would
        started = time.perf_counter()
        writer.optimize()
        figures["hnsw_build_s"] = round(time.perf_counter() - started, 2)
    reader = LocalIndex(directory, hnsw=params)
    started = time.perf_counter()
    reader.search(queries[0], 1)
    figures["reader_first_search_s"] = round(time.perf_counter() - started, 2)
    exact, figures["exact"] = timed_searches(reader, queries, exact=True)
    approximate, figures["hnsw"] = timed_searches(reader, queries, exact=False)
    figures["hnsw"]["recall_at_10"] = recall_at_10(approximate, exact)
    figures["hnsw"]["ann_size"] = reader.ann_size
    reader.close()
    return figures


def bench_exact_only(generator: EmbeddingLikeGenerator, count: int, queries_count: int, why: str) -> dict:
    """Exact search on the in-memory matrix alone (no SQLite), generated in chunks to bound peak memory.

    Each query reads the whole matrix (5 GB at 1M), so a few dozen queries give stable percentiles.
    """
    queries_count = min(queries_count, 30)
    matrix, latents = VectorMatrix(DIMENSION), []
    matrix.reserve(count)
    for start in range(0, count, 50_000):
        vectors, latent = generator.catalogue(min(50_000, count - start), seed=1000 + start)
        matrix.append(np.arange(start + 1, start + 1 + len(vectors)), vectors)
        latents.append(latent[:100])
    queries = generator.queries(np.concatenate(latents), queries_count, seed=7)
    durations = []
    for query in queries:
        started = time.perf_counter()
        matrix.top_k(query, 10)
        durations.append(time.perf_counter() - started)
    return {"count": count, "exact_in_memory": percentiles_ms(durations), "hnsw": f"skipped: {why}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--max-ann-size", type=int, default=100_000)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--budget-s", type=float, default=540.0, help="skip HNSW builds projected to overrun this")
    arguments = parser.parse_args()
    params = HnswParams()
    report: dict = {
        "machine": machine_facts(blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default")),
        "hnsw_params": params.__dict__,
        "k": 10,
        "results": [],
    }
    generator = EmbeddingLikeGenerator()
    started, seconds_per_vector = time.perf_counter(), None  # upsert + HNSW build cost, learnt from the first size
    with tempfile.TemporaryDirectory(prefix="bench-knn-") as scratch:
        for size in sorted(arguments.sizes):
            remaining_s = arguments.budget_s - (time.perf_counter() - started)
            projected_s = size * seconds_per_vector * 1.3 if seconds_per_vector else 0.0
            if size > arguments.max_ann_size or projected_s > remaining_s:
                if size * DIMENSION * 4 * 1.5 > os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"):
                    report["results"].append({"count": size, "skipped": "not enough free memory"})
                    continue
                why = (
                    f"projected build {projected_s:.0f} s exceeds the remaining budget {remaining_s:.0f} s"
                    if size <= arguments.max_ann_size
                    else f"above --max-ann-size {arguments.max_ann_size}"
                )
                report["results"].append(
                    {"data": "embedding-like", **bench_exact_only(generator, size, arguments.queries, why)}
                )
                continue
            vectors, latent = generator.catalogue(size, seed=size)
            queries = generator.queries(latent, arguments.queries, seed=size + 1)
            figures = bench_index(vectors, queries, Path(scratch) / f"like-{size}", params)
            seconds_per_vector = (figures["upsert_s"] + figures["hnsw_build_s"]) / size
            report["results"].append({"data": "embedding-like", **figures})
            del vectors, latent
        smallest = min(arguments.sizes)
        remaining_s = arguments.budget_s - (time.perf_counter() - started)
        hard_data = "gaussian-clusters (hard, high intrinsic dimension)"
        if seconds_per_vector and smallest * seconds_per_vector * 1.3 > remaining_s:
            report["results"].append({"data": hard_data, "count": smallest, "skipped": "over the time budget"})
        else:
            hard = gaussian_clusters(smallest + arguments.queries, seed=3)
            figures = bench_index(hard[:smallest], hard[smallest:], Path(scratch) / "gaussian", params)
            report["results"].append({"data": hard_data, **figures})
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(report, indent=2)
    if arguments.output:
        arguments.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
