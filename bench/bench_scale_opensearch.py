"""The OpenSearch half of bench_scale.py: bulk loading rate with and without the backfill levers, query p50 and
recall@10 against exact search, for the default Lucene HNSW and the memory-saving storage this node accepts.

Every index is named scale-<random> and deleted afterwards. The baseline (one bulk request at a time, refresh
and replicas as the index was created, as `OpenSearchIndex.upsert` does) loads a 10,000-document slice only,
since at ~330 documents/s a full 100k would take five minutes; its rate is compared with the backfill on the
same slice size measured first in the same run.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import numpy as np
from bench_scale import exact_top10, percentiles, recall

_BASELINE_SLICE = 10_000


def _records(start: int, count: int, labels: np.ndarray):
    from visual_search.core.records import ImageRecord

    names = ("common", "tenth", "thousandth")
    return [
        ImageRecord(f"k{start + i}", f"/c/{start + i}.jpg", "0" * 64, 1, 1, names[labels[start + i]])
        for i in range(count)
    ]


def _batches(catalogue: np.ndarray, labels: np.ndarray, count: int, batch: int):
    for start in range(0, count, batch):
        chunk = np.asarray(catalogue[start : min(start + batch, count)])
        yield _records(start, len(chunk), labels), chunk


def _index_size_bytes(url: str, name: str) -> int:
    with urllib.request.urlopen(f"{url}/{name}/_stats/store", timeout=30) as response:
        return int(json.loads(response.read())["_all"]["primaries"]["store"]["size_in_bytes"])


def _new_index(url: str, dimension: int, **storage):
    from visual_search.indexes.opensearch.index import OpenSearchIndex

    return OpenSearchIndex(
        f"{url}/scale-{uuid.uuid4().hex[:8]}",
        model_id="bench-scale",
        dimension=dimension,
        refresh=False,
        timeout_s=300,
        **storage,
    )


def _queries(index, queries: np.ndarray) -> tuple[dict, list[list[int]]]:
    for query in queries[:20]:
        index.search(query, 10)  # warm: loads the graphs
    durations, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = index.search(query, 10)
        durations.append(time.perf_counter() - started)
        found.append([int(hit.record.key[1:]) for hit in hits])
    return percentiles(durations), found


VARIANTS = {"lucene": {}, "lucene_compression_4x": {"compression_level": "4x"}, "lucene_sq": {"encoder": "sq"}}


def bench_opensearch(
    catalogue: np.ndarray,
    queries: np.ndarray,
    url: str,
    labels: np.ndarray,
    batch: int = 500,
    threads: int = 4,
    variants: tuple[str, ...] = ("lucene", "lucene_compression_4x"),
) -> dict:
    count, dimension = catalogue.shape
    truth = exact_top10(catalogue, queries)
    report: dict = {"batch": batch, "threads": threads}
    with urllib.request.urlopen(url, timeout=10) as response:
        report["opensearch"] = json.loads(response.read())["version"]["number"]

    slice_count = min(_BASELINE_SLICE, count)
    for name, levers in (("baseline_serial_upsert", False), ("backfill_same_slice", True)):
        index = _new_index(url, dimension)
        try:
            started = time.perf_counter()
            if levers:
                index.bulk_load(_batches(catalogue, labels, slice_count, batch), threads=threads)
            else:
                for records, vectors in _batches(catalogue, labels, slice_count, batch):
                    index.upsert(records, vectors)
                index.refresh()
            report[name] = {"docs": slice_count, "docs_per_s": round(slice_count / (time.perf_counter() - started), 1)}
        finally:
            index.drop()
            index.close()
    report["backfill_speedup_on_slice"] = round(
        report["backfill_same_slice"]["docs_per_s"] / report["baseline_serial_upsert"]["docs_per_s"], 2
    )

    for name in variants:
        storage = VARIANTS[name]
        index = _new_index(url, dimension, **storage)
        try:
            started = time.perf_counter()
            index.bulk_load(_batches(catalogue, labels, count, batch), threads=threads)
            load_s = time.perf_counter() - started
            assert index.count() == count, f"{index.count()} documents searchable of {count}"
            latency, found = _queries(index, queries)
            report[name] = {
                "storage": storage or "float32 HNSW (default)",
                "load_s": round(load_s, 1),
                "docs_per_s": round(count / load_s, 1),
                **latency,
                "recall_at_10": recall(found, truth),
                "store_bytes": _index_size_bytes(url, index.index_name),
            }
        finally:
            index.drop()
            index.close()
    report["not_measured_here"] = (
        "faiss engine (SQ fp16 encoder, on_disk mode with 8x-32x binary quantisation): "
        "this node's k-NN zip has no native faiss libraries (and the adapter notes the node dies "
        "using them), so faiss was not tried; lucene refuses compression above 4x"
    )
    return report
