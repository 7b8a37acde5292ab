"""Scale benchmark: build, open and search an index of N embedding-like vectors; prints one JSON object.

    .venv/bin/python bench/bench_scale.py --vectors 100000 [--json] [--backend embedded|opensearch]

Vectors come from bench/scale_data.py (a Gaussian mixture fitted to the real clothing embeddings; queries are
noisy copies of held-out draws). Ground truth is exact search over the float32 vectors. Filters: the label
"tenth" marks 10% of the catalogue, "thousandth" 0.1%. The embedded index is built by this process, then
opened and searched by a fresh child process, whose resident memory is what `rss_bytes_per_vector` reports
(everything included: Python, numpy, faiss, the graph, the touched pages of the mapped vector file).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`
from scale_data import EmbeddingMixture, embed_clothing, held_out_queries, write_catalogue

REPO = Path(__file__).resolve().parent.parent
FILTERS = {"filtered_10pct": "tenth", "filtered_0_1pct": "thousandth"}
_BATCH = 5000


def label_of(number: int) -> str:
    if number % 1000 == 7:
        return "thousandth"
    return "tenth" if number % 10 == 3 else "common"


def labels_array(count: int) -> np.ndarray:
    numbers = np.arange(count)
    return np.where(numbers % 1000 == 7, 2, np.where(numbers % 10 == 3, 1, 0))  # 0 common, 1 tenth, 2 thousandth


def dataset(
    count: int, workdir: Path, clothing_dir: Path, queries: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(catalogue float32 memmap, queries, how they were made); the catalogue is cached in `workdir`."""
    real_path = workdir / "clothing-vectors.npy"
    real = np.load(real_path) if real_path.exists() else embed_clothing(clothing_dir, real_path)
    mixture = EmbeddingMixture.fit(real, seed=seed)
    path = workdir / f"catalogue-{count}-{seed}.npy"
    if path.exists():
        catalogue = np.load(path, mmap_mode="r")
    else:
        catalogue = write_catalogue(mixture, count, path, seed=seed)
    how = {
        "source": f"{len(real)} real lite2-fp32 clothing embeddings",
        "model": "64-cluster Gaussian mixture, per-cluster spread along 64 principal directions + isotropic rest",
        "queries": "held-out draws + 1/3 cluster spread of noise",
        "seed": seed,
    }
    return catalogue, held_out_queries(mixture, queries, seed), how


def exact_top10(catalogue: np.ndarray, queries: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the exact 10 best per query (over `allowed` rows when given), chunked over the memmap."""
    best_scores = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 10), dtype=np.int64)
    for start in range(0, len(catalogue), 65536):
        rows = np.arange(start, min(start + 65536, len(catalogue)))
        if allowed is not None:
            rows = rows[allowed[rows]]
        scores = queries @ np.asarray(catalogue[rows]).T
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        merged_rows = np.concatenate([best_rows, np.broadcast_to(rows, scores.shape)], axis=1)
        top = np.argsort(-merged_scores, axis=1)[:, :10]
        best_scores = np.take_along_axis(merged_scores, top, axis=1)
        best_rows = np.take_along_axis(merged_rows, top, axis=1)
    return best_rows


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return round(sum(len(set(row) & set(truth[i].tolist())) for i, row in enumerate(found)) / truth.size, 4)


def percentiles(durations_s: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(durations_s, 50)) * 1e3, 3),
        "p95_ms": round(float(np.percentile(durations_s, 95)) * 1e3, 3),
    }


def memory_of_this_process() -> dict:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    kib = {name: int(status[name].split()[0]) for name in ("VmRSS", "VmHWM", "RssAnon", "RssFile") if name in status}
    return {name: value * 1024 for name, value in kib.items()}


def build_embedded(catalogue: np.ndarray, directory: Path, hnsw_m: int | None = None) -> dict:
    from visual_search.core.records import ImageRecord
    from visual_search.indexes.local.hnsw import HnswParams
    from visual_search.indexes.local.index import LocalIndex

    params = HnswParams() if hnsw_m is None else HnswParams(m=hnsw_m)
    started = time.perf_counter()
    with LocalIndex(
        directory, model_id="bench-scale", dimension=catalogue.shape[1], writable=True, hnsw=params
    ) as index:
        for start in range(0, len(catalogue), _BATCH):
            chunk = np.asarray(catalogue[start : start + _BATCH])
            records = [
                ImageRecord(f"k{start + i}", f"/c/{start + i}.jpg", "0" * 64, 1, 1, label_of(start + i))
                for i in range(len(chunk))
            ]
            index.upsert(records, chunk)
        upserted = time.perf_counter() - started
        index.optimize()
    return {"build_s": round(time.perf_counter() - started, 1), "upsert_s": round(upserted, 1)}


def search_child(directory: Path, queries_path: Path) -> dict:
    """Run in a fresh process: open the index, answer every query unfiltered and filtered, report memory."""
    from visual_search.core.records import SearchFilters
    from visual_search.indexes.local.index import LocalIndex

    queries = np.load(queries_path)
    started = time.perf_counter()
    index = LocalIndex(directory)
    index.search(queries[0], 10)  # the first search maps the vectors and loads the graph
    figures: dict = {"open_s": round(time.perf_counter() - started, 3)}
    for name, label in {"plain": None, **FILTERS}.items():
        filters = SearchFilters(labels=frozenset({label})) if label else None
        index.search(queries[0], 10, filters)  # reads the filter's seqs once (cached until the next commit)
        durations, found, short = [], [], 0
        for query in queries:
            begun = time.perf_counter()
            hits = index.search(query, 10, filters)
            durations.append(time.perf_counter() - begun)
            found.append([int(hit.record.key[1:]) for hit in hits])
            short += len(hits) < 10
        figures[name] = {**percentiles(durations), "found": found, "queries_with_fewer_than_10": short}
    figures["memory"] = memory_of_this_process()
    exact = []  # the same-run baseline: exact search (every float16 row read and scored), a few queries only
    for query in queries[:5]:
        begun = time.perf_counter()
        index.search(query, 10, exact=True)
        exact.append(time.perf_counter() - begun)
    figures["exact_p50_ms"] = percentiles(exact)["p50_ms"]
    index.close()
    return figures


def bench_embedded(
    catalogue: np.ndarray, queries: np.ndarray, workdir: Path, reuse: bool = False, hnsw_m: int | None = None
) -> dict:
    directory = workdir / (f"index-{len(catalogue)}" + (f"-m{hnsw_m}" if hnsw_m else ""))
    if directory.exists() and not reuse:
        raise SystemExit(f"{directory} exists; remove it to build afresh, or pass --reuse-index to search it again")
    figures = (
        {"build_s": None, "reused_index": str(directory)} if reuse else build_embedded(catalogue, directory, hnsw_m)
    )
    queries_path = workdir / "queries.npy"
    np.save(queries_path, queries)
    child = subprocess.run(
        [sys.executable, __file__, "--search-child", str(directory), str(queries_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    searched = json.loads(child.stdout)
    figures["open_s"] = searched["open_s"]
    figures["rss_bytes_per_vector"] = round(searched["memory"]["VmRSS"] / len(catalogue), 1)
    figures["memory"] = searched["memory"]
    figures["exact_search_p50_ms_same_run"] = searched["exact_p50_ms"]
    figures["disk_bytes"] = sum(path.stat().st_size for path in directory.iterdir())
    labels = labels_array(len(catalogue))
    for name, label in {"plain": None, **FILTERS}.items():
        allowed = None if label is None else labels == (1 if label == "tenth" else 2)
        truth = exact_top10(catalogue, queries, allowed)
        result = {
            "p50_ms": searched[name]["p50_ms"],
            "p95_ms": searched[name]["p95_ms"],
            "recall_at_10": recall(searched[name]["found"], truth),
            "queries_with_fewer_than_10": searched[name]["queries_with_fewer_than_10"],
        }
        if name == "plain":
            figures.update(result)
        else:
            figures[name] = result
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backend", choices=("embedded", "opensearch"), default="embedded")
    parser.add_argument("--json", action="store_true", help="one line of JSON (default: indented)")
    parser.add_argument("--workdir", type=Path, default=REPO / "var" / "scale")
    parser.add_argument(
        "--clothing-dir",
        type=Path,
        default=Path(os.environ.get("CLOTHING_DIR", REPO.parent / "shared/datasets/clothing")),
    )
    parser.add_argument("--opensearch-url", default="http://127.0.0.1:9200")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--opensearch-storage",
        nargs="+",
        default=["lucene", "lucene_compression_4x"],
        help="storage variants to load in full (bench_scale_opensearch.VARIANTS)",
    )
    parser.add_argument(
        "--reuse-index", action="store_true", help="search the index a previous run built (no build figures)"
    )
    parser.add_argument(
        "--hnsw-m", type=int, help="build the graph with this M instead of the product's default (index-N-mM)"
    )
    parser.add_argument("--search-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.search_child:
        print(json.dumps(search_child(*arguments.search_child)))
        return 0
    arguments.workdir.mkdir(parents=True, exist_ok=True)
    catalogue, queries, how = dataset(
        arguments.vectors, arguments.workdir, arguments.clothing_dir, arguments.queries, arguments.seed
    )
    report = {
        "vectors": len(catalogue),
        "backend": arguments.backend,
        "k": 10,
        "queries": len(queries),
        "test_vectors": how,
        "machine": machine_facts(),
    }
    if arguments.backend == "embedded":
        report.update(bench_embedded(catalogue, queries, arguments.workdir, arguments.reuse_index, arguments.hnsw_m))
    else:
        from bench_scale_opensearch import bench_opensearch

        report.update(
            bench_opensearch(
                catalogue,
                queries,
                arguments.opensearch_url,
                labels_array(len(catalogue)),
                variants=tuple(arguments.opensearch_storage),
            )
        )
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=None if arguments.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
