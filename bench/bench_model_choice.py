"""fp32 or int8 at the default input size: both quality benchmarks and the speed of each, in one run.

    .venv/bin/python bench/bench_model_choice.py [--photos 1000] [--queries 250] [--seed 12] [--models lite2-fp32 lite2-int8]

Quality (as bench/bench_quality.py, on the product's own vectors searched with colour weight 0, i.e. their
appearance part): `--photos` labelled clothing photos drawn with `--seed`; category = leave-one-out recall@1 and
mAP (a neighbour is right when it shares the label); shopper = `--queries` synthetic shopper photos
(services/shopper_sim.py) against the untouched originals, exact-item recall@1/@10 and mAP. Speed, in
interleaved rounds so the load of a shared machine falls on both alike: one query's model step (embed_query,
all cores) p50, and bulk model-only images/s (one single-threaded stream per core, batches of 32). Also the
CPU's int8 dot-product instructions (VNNI), which decide how much int8 gains.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from bench_quality import DATASET, decode, load_dataset  # bench/: run as `python bench/<name>.py`
from machine import machine_facts

from visual_search.bootstrap import build_embedder
from visual_search.core.colour import colour_dimension_of
from visual_search.core.images import to_model_input
from visual_search.core.settings import Settings
from visual_search.services.evaluation import score_retrieval
from visual_search.services.shopper_sim import shopper_queries

REPO = Path(__file__).resolve().parents[1]


def cpu_int8_instructions() -> list[str]:
    flags = next(
        (line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if "flags" in line),
        [],
    )
    return sorted({flag for flag in flags if "vnni" in flag})


def appearance(vectors: np.ndarray, model_id: str) -> np.ndarray:
    part = vectors[:, : vectors.shape[1] - colour_dimension_of(model_id)]
    return part / np.linalg.norm(part, axis=1, keepdims=True)


def embed_all(embedder, images: list[bytes]) -> np.ndarray:
    size = embedder.spec.size_px
    out = []
    for start in range(0, len(images), 32):
        tensors = np.stack([to_model_input(decode(data, size), embedder.spec) for data in images[start : start + 32]])
        out.append(embedder.embed_tensors(tensors))
    return np.concatenate(out)


def scores(result) -> dict:
    return {
        "r1": round(result.recall_at_1, 4),
        "r10": round(result.recall_at_k, 4),
        "map": round(result.mean_average_precision, 4),
    }


def speeds(models: dict, photo: bytes, tensors: np.ndarray, rounds: int) -> dict:
    samples = {name: {"query_ms": [], "bulk_img_per_s": []} for name in models}
    for _ in range(rounds):
        for name, (query, bulk) in models.items():
            image = decode(photo, query.spec.size_px)
            times = []
            for _ in range(10):
                started = time.perf_counter()
                query.embed_query(image, with_colour=False)
                times.append((time.perf_counter() - started) * 1000)
            samples[name]["query_ms"].append(statistics.median(times))
            started = time.perf_counter()
            for start in range(0, len(tensors), 32):
                bulk.embed_tensors(tensors[start : start + 32])
            samples[name]["bulk_img_per_s"].append(len(tensors) / (time.perf_counter() - started))
    return {
        name: {key: round(statistics.median(values), 2) for key, values in measured.items()}
        for name, measured in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=250)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["lite2-fp32", "lite2-int8"])
    args = parser.parse_args()
    facts = machine_facts(int8_instructions=cpu_int8_instructions())
    paths, labels, backgrounds = load_dataset(args.photos, args.seed, args.dataset)
    photos = [path.read_bytes() for path in paths]
    shop = shopper_queries(
        args.queries,
        len(photos),
        lambda i: decode(photos[i], 0),
        seed=args.seed,
        backgrounds=[lambda p=p: decode(p.read_bytes(), 0) for p in backgrounds],
    )
    models = {
        name: (build_embedder(Settings(model=name)), build_embedder(Settings(model=name), bulk=True))
        for name in args.models
    }
    result: dict = {
        "bench": "model_choice",
        "machine": facts,
        "photos": len(photos),
        "queries": len(shop),
        "models": {},
    }
    vectors = {}
    for name, (_, bulk) in models.items():
        gallery = appearance(embed_all(bulk, photos), bulk.model_id)
        queries = appearance(embed_all(bulk, [q.jpeg for q in shop]), bulk.model_id)
        vectors[name] = gallery
        ids = [str(i) for i in range(len(photos))]
        result["models"][name] = {
            "model_id": bulk.model_id,
            "category": scores(score_retrieval(gallery, labels, k=10)),
            "shopper": scores(
                score_retrieval(gallery, ids, queries, [str(q.source) for q in shop], k=10, same_items=False)
            ),
        }
        print(f"{name} scored", file=sys.stderr, flush=True)
    if len(vectors) == 2:
        first, second = vectors.values()
        cosines = np.sum(first * second, axis=1)
        result["appearance_cosine_between_models"] = {
            "mean": round(float(cosines.mean()), 4),
            "min": round(float(cosines.min()), 4),
        }
    some = next(iter(models.values()))[1]
    tensors = np.stack([to_model_input(decode(data, some.spec.size_px), some.spec) for data in photos[:64]])
    for name, speed in speeds(models, photos[0], tensors, args.rounds).items():
        result["models"][name]["speed"] = speed
    result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
