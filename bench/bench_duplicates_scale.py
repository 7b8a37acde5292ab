"""How the near-duplicate pass scales: one k-NN search per image on the embedded index, at 10k (exact search)
and at N (HNSW), with planted near-copies to check that the graph still finds them.

Catalogue vectors come from bench/scale_data.py's mixture fitted to real clothing embeddings (an .npy it wrote);
`--copies` of them get a noisy twin at cosine ~0.98 (a recompressed photo scores about that). Writes JSON.

    nice -n 10 .venv/bin/python bench/bench_duplicates_scale.py var/scale/catalogue-100000-1.npy --count 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_facts  # noqa: E402

from visual_search.core.records import ImageRecord  # noqa: E402
from visual_search.indexes.local.index import LocalIndex  # noqa: E402
from visual_search.services.duplicates import find_duplicates  # noqa: E402


def twins(vectors: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(size=vectors.shape).astype(np.float32)
    noise -= (noise * vectors).sum(axis=1, keepdims=True) * vectors  # orthogonal to each vector
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return (cosine * vectors + np.sqrt(1 - cosine**2) * noise).astype(np.float32)


def run(vectors: np.ndarray, copies: int, folder: Path) -> dict:
    rng = np.random.default_rng(1)
    planted = rng.choice(len(vectors), size=copies, replace=False)
    copy_vectors = twins(vectors[planted], 0.98, rng)
    index = LocalIndex(folder, model_id="bench", dimension=vectors.shape[1], writable=True)
    started = time.perf_counter()
    for start in range(0, len(vectors), 5000):
        chunk = vectors[start : start + 5000]
        index.upsert([ImageRecord(f"{i}", "", "", 1, 1) for i in range(start, start + len(chunk))], chunk)
    index.upsert([ImageRecord(f"copy-{i}", "", "", 1, 1) for i in planted], copy_vectors)
    index.optimize()
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    report = find_duplicates(index, threshold=0.95)
    pass_s = time.perf_counter() - started
    index.close()
    grouped = {key for group in report.groups for key in group.keys}
    found = sum(1 for i in planted if {f"{i}", f"copy-{i}"} <= grouped)
    return {
        "images": len(vectors) + copies,
        "build_s": round(build_s, 1),
        "pass_s": round(pass_s, 1),
        "ms_per_image": round(1000 * pass_s / (len(vectors) + copies), 2),
        "planted_copies_found": round(found / copies, 4),
        "groups": len(report.groups),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vectors", help="an .npy of unit vectors (bench/scale_data.py)")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=500)
    args = parser.parse_args()
    vectors = np.load(args.vectors, mmap_mode="r")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dup-scale-") as scratch:
        for count in (10_000, args.count):
            rows.append(
                run(np.ascontiguousarray(vectors[:count], dtype=np.float32), args.copies, Path(scratch) / str(count))
            )
    rows[1]["ms_per_image_ratio_to_10k"] = round(rows[1]["ms_per_image"] / rows[0]["ms_per_image"], 2)
    print(json.dumps({"machine": machine_facts(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
