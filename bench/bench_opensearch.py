"""Benchmark OpenSearchIndex on a real node beside the embedded index, on the same vectors: bulk indexing rate,
k-NN query latency with and without a label filter, and OpenSearch's recall@k against exact search.

Usage (node from `scripts/opensearch.sh start`):
  .venv/bin/python bench/bench_opensearch.py [--n 5756] [--dimension 1280] [--queries 200]
  .venv/bin/python bench/bench_opensearch.py --vectors vectors.npy --labels labels.txt
Without --vectors it generates clustered unit vectors: 20 labels, each a random centre plus noise, so a
label filter keeps about 5% of the catalogue (a selective filter, the case efficient filtering is for).
Prints one JSON document: machine facts, date, parameters and the figures. The index is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

from visual_search.core.records import ImageRecord, SearchFilters
from visual_search.indexes.local.index import LocalIndex
from visual_search.indexes.opensearch.index import OpenSearchIndex


def clustered_unit_vectors(count: int, dimension: int, labels: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Photos of one garment type sit near each other: centre + noise of a similar norm, then L2-normalised."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels, dimension)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    assignment = rng.integers(0, labels, size=count)
    noise = rng.normal(size=(count, dimension)).astype(np.float32) / np.sqrt(dimension)
    vectors = centres[assignment] + 1.2 * noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), [f"label-{number:02d}" for number in assignment]


def load_vectors(path: str, labels_path: str | None) -> tuple[np.ndarray, list[str | None]]:
    vectors = np.load(path).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    if labels_path is None:
        return vectors, [None] * len(vectors)
    with open(labels_path, encoding="utf-8") as handle:
        labels = [line.strip() or None for line in handle]
    if len(labels) != len(vectors):
        raise SystemExit(f"{labels_path} has {len(labels)} lines for {len(vectors)} vectors")
    return vectors, labels


def node_facts(base_url: str) -> dict:
    with urllib.request.urlopen(base_url, timeout=10) as response:
        node = json.loads(response.read())
    return machine_facts(opensearch=node["version"]["number"], node_url=base_url)


def percentiles_ms(samples_s: list[float]) -> dict:
    values = np.asarray(samples_s) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "mean_ms": round(float(values.mean()), 2),
        "queries": len(values),
    }


def time_queries(index: OpenSearchIndex, queries: np.ndarray, k: int, filters_for) -> tuple[list[float], list[int]]:
    latencies, returned = [], []
    for number, query in enumerate(queries):
        started = time.perf_counter()
        hits = index.search(query, k, filters=filters_for(number))
        latencies.append(time.perf_counter() - started)
        returned.append(len(hits))
    return latencies, returned


def measure(index, records, vectors, queries, distinct_labels, k, batch) -> tuple[dict, list[list[str]]]:
    """Bulk indexing rate and query latency with and without a label filter; also the unfiltered hits' keys."""
    count = len(records)
    started = time.perf_counter()
    for start in range(0, count, batch):
        index.upsert(records[start : start + batch], vectors[start : start + batch])
    if hasattr(index, "refresh"):
        index.refresh()
    indexed_s = time.perf_counter() - started
    assert index.count() == count
    time_queries(index, queries[:20], k, lambda number: None)  # warm the HNSW graph and caches
    plain, _ = time_queries(index, queries, k, lambda number: None)
    filtered, returned = time_queries(
        index,
        queries,
        k,
        lambda number: (
            SearchFilters(labels=frozenset({distinct_labels[number % len(distinct_labels)]}))
            if distinct_labels
            else None
        ),
    )
    hits = [[hit.record.key for hit in index.search(query, k)] for query in queries]
    figures = {
        "indexing": {"seconds": round(indexed_s, 2), "docs_per_s": round(count / indexed_s, 1)},
        "query_no_filter": percentiles_ms(plain),
        "query_label_filter": {**percentiles_ms(filtered), "min_hits_returned": int(min(returned))},
    }
    return figures, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("VISUAL_SEARCH_TEST_OPENSEARCH_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--n", type=int, default=5756)
    parser.add_argument("--dimension", type=int, default=1280)
    parser.add_argument("--labels-count", type=int, default=20)
    parser.add_argument("--vectors", help=".npy of shape (n, d); rows are L2-normalised on load")
    parser.add_argument("--labels", help="text file, one label per line, aligned with --vectors")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500, help="records per bulk request")
    parser.add_argument("--engine", default="lucene")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    if args.vectors:
        vectors, labels = load_vectors(args.vectors, args.labels)
        source = {"vectors": args.vectors, "labels": args.labels}
    else:
        vectors, labels = clustered_unit_vectors(args.n, args.dimension, args.labels_count, args.seed)
        source = {"synthetic": f"{args.labels_count} clusters, centre + 1.2 x unit noise, seed {args.seed}"}
    count, dimension = vectors.shape
    records = [
        ImageRecord(
            key=f"bench/{number:06d}.jpg",
            uri=f"/bench/{number:06d}.jpg",
            content_hash="0" * 64,
            width=512,
            height=512,
            label=label,
        )
        for number, label in enumerate(labels)
    ]

    facts = node_facts(args.url)
    rng = np.random.default_rng(args.seed + 1)
    queries = vectors[rng.integers(0, count, size=args.queries)]
    distinct_labels = sorted({label for label in labels if label})
    workload = (records, vectors, queries, distinct_labels, args.k, args.batch)

    opensearch = OpenSearchIndex(
        f"{args.url}/bench-{uuid.uuid4().hex[:8]}",
        model_id="bench",
        dimension=dimension,
        engine=args.engine,
        refresh=False,
        timeout_s=120,
    )
    try:
        opensearch_figures, opensearch_hits = measure(opensearch, *workload)
    finally:
        opensearch.drop()
        opensearch.close()
    with tempfile.TemporaryDirectory() as scratch:
        embedded = LocalIndex(Path(scratch) / "index", model_id="bench", dimension=dimension, writable=True)
        try:
            embedded_figures, exact_hits = measure(embedded, *workload)
        finally:
            embedded.close()
    # The embedded index is exact at this size: it is the ground truth for OpenSearch's approximate HNSW.
    recall = np.mean([len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(opensearch_hits, exact_hits)])
    report = {
        "machine": {**facts, "load_average_at_end": [round(load, 2) for load in os.getloadavg()]},
        "parameters": {
            "n": count,
            "dimension": dimension,
            "k": args.k,
            "batch": args.batch,
            "engine": args.engine,
            "m": 16,
            "ef_construction": 128,
            "ef_search": 100,
            "source": source,
            "labels": len(distinct_labels),
        },
        "opensearch": {**opensearch_figures, "recall_at_k_vs_exact": round(float(recall), 4)},
        "embedded": embedded_figures,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
