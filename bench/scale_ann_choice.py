"""How the embedded index's ANN structure was chosen: faiss index types on N embedding-like vectors (bench/scale_data.py),
build seconds (2 threads), single-threaded p50/p95 and recall@10 after re-ranking the top 50 from float16.

    .venv/bin/python bench/scale_ann_choice.py 100000 "IVF1024,SQ8@nprobe=8,nprobe=16,nprobe=32" "HNSW32,SQ8@efSearch=64,efSearch=128"

Each spec is a faiss index_factory string, then "@" and comma-separated search parameters to try. Needs
var/scale/clothing-vectors.npy (written by bench_scale.py). Figures: docs/BENCHMARKS.md, "Scale".
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from scale_data import EmbeddingMixture, held_out_queries, write_catalogue

RERANKED = 50


def main() -> int:
    count, specs = int(sys.argv[1]), sys.argv[2:]
    mixture = EmbeddingMixture.fit(np.load("var/scale/clothing-vectors.npy"))
    catalogue = np.ascontiguousarray(
        write_catalogue(mixture, count, Path(f"var/scale/catalogue-{count}-1.npy"), seed=1)
    )
    queries = held_out_queries(mixture, 200, seed=1)
    truth = np.argsort(-(queries @ catalogue.T), axis=1)[:, :10]
    half_precision = catalogue.astype(np.float16)
    for spec in specs:
        factory, _, settings = spec.partition("@")
        faiss.omp_set_num_threads(2)
        started = time.perf_counter()
        index = faiss.index_factory(catalogue.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(catalogue[np.random.default_rng(0).choice(count, min(count, 50_000), replace=False)])
        if "HNSW" in factory:
            faiss.downcast_index(index).hnsw.efConstruction = 40
        index.add(catalogue)
        build_s = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        for setting in settings.split(","):
            faiss.ParameterSpace().set_index_parameters(index, setting)
            durations, found = [], 0
            for number, query in enumerate(queries):
                started = time.perf_counter()
                _, ids = index.search(query[None], RERANKED)
                candidates = ids[0][ids[0] >= 0]
                best = candidates[np.argsort(-(half_precision[candidates].astype(np.float32) @ query))[:10]]
                durations.append(time.perf_counter() - started)
                found += len(set(best.tolist()) & set(truth[number].tolist()))
            print(
                json.dumps(
                    {
                        "n": count,
                        "index": factory,
                        "setting": setting,
                        "build_s": round(build_s, 1),
                        "p50_ms": round(float(np.percentile(durations, 50)) * 1e3, 2),
                        "p95_ms": round(float(np.percentile(durations, 95)) * 1e3, 2),
                        "recall_at_10": found / truth.size,
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
