"""The query-domain centre (issue 20) on both benchmarks, per resolution and precision, with its cost, in one run.

    nice -n 10 .venv/bin/python bench/bench_adaptation.py --cache DIR [--photos 1500] [--adapt-photos 150]
        [--queries 300] [--models lite2-fp32@300,lite2-int8,lite2-fp32@368,lite2-fp32@448] [--out result.json]

Photos (the CC0 clothing set): `--photos` labelled photos drawn with `--seed` form the gallery; the next
`--adapt-photos` of the same draw are the *adaptation sources*, never in the gallery.
- category: leave-one-out over the gallery (right = same label), recall@1 and mAP;
- shopper: `--queries` synthetic shopper photos (services/shopper_sim.py, seed `--seed`) of gallery items
  against the untouched gallery (right = the exact item).
Every centre is fitted on photos that are not evaluation queries:
- catalogue: the mean of the gallery's own vectors (the catalogue side; no query is used);
- shopper photos: synthetic shopper photos made with seed `--seed + 1` of the adaptation sources (other items,
  other seed, never a query);
- live (simulated): the same adaptation photos fed one by one, as searches from `--clients` clients, through the
  server's learner (services/adaptation.py: refit every 50 queries, capped step and per-client share);
- whitening: PCA-whitening to 128-d with shrinkage, fitted on the adaptation photos (first model only).
Cost: query ms (one photo, all cores, decode to vector) and indexing img/s (bulk embedder, decode included),
measured in interleaved rounds in the same run (bench_quality.time_costs); the centre adds one projection.
Embeddings are cached per model in --cache, so re-scoring is quick.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from bench_quality import DATASET, cached, decode, load_dataset, time_costs
from machine import machine_facts


def embed_all(embedder, images: list[bytes], batch: int = 32) -> np.ndarray:
    size = embedder.spec.size_px
    parts = []
    for start in range(0, len(images), batch):
        parts.append(embedder.embed([decode(data, size) for data in images[start : start + batch]]))
    return np.concatenate(parts)


def scores(gallery: np.ndarray, labels: list[str], shop: np.ndarray, sources: list[int]) -> dict:
    from visual_search.services.evaluation import score_retrieval

    category = score_retrieval(gallery, labels, k=10)
    ids = [str(i) for i in range(len(gallery))]
    shopper = score_retrieval(gallery, ids, shop, [str(s) for s in sources], k=10)
    return {
        "category_r1": round(category.recall_at_1, 4),
        "category_map": round(category.mean_average_precision, 4),
        "shopper_r1": round(shopper.recall_at_1, 4),
        "shopper_r10": round(shopper.recall_at_k, 4),
        "shopper_map": round(shopper.mean_average_precision, 4),
    }


def searched(vectors: np.ndarray, centre, colour_dimension: int) -> np.ndarray:
    """The rows a colour-weight-0 search ranks by: the (projected) appearance part, unit."""
    from visual_search.core.centre import appearance_units, project

    return appearance_units(project(vectors, centre, colour_dimension), colour_dimension)


def whitening(adapt: np.ndarray, dimension: int = 128, shrinkage: float = 0.5):
    """PCA-whitening fitted on the adaptation photos: centred, projected on the top components, each scaled by
    1/sqrt(eigenvalue + shrinkage * mean eigenvalue) (without shrinkage it amplifies noise directions)."""
    mean = adapt.mean(axis=0)
    covariance = np.cov((adapt - mean).T)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:dimension]
    values, vectors = values[order], vectors[:, order]
    scale = 1.0 / np.sqrt(values + shrinkage * values.mean())

    def apply(rows: np.ndarray) -> np.ndarray:
        out = (rows - mean) @ vectors * scale
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)

    return apply


def live_centre(adapt: np.ndarray, colour_dimension: int, clients: int):
    """The centre the live learner ends with after the adaptation photos arrive as searches of `clients` clients."""
    from visual_search.services.adaptation import LearningPolicy, QueryDomainLearner

    learner = QueryDomainLearner(LearningPolicy(refit_every=50), colour_dimension=colour_dimension)
    for n, row in enumerate(adapt):
        learner.observe(row, client=f"client-{n % clients}")
    return learner.centre


def markdown(rows: list[dict], costs: dict, baseline: str) -> list[str]:
    """The table of docs/BENCHMARKS.md: one row per model and centre, costs as ratios to the baseline model."""
    lines = [
        "| model | centre (fitted on) | category r@1 | category mAP | shopper r@1 | shopper r@10 | shopper mAP "
        "| query ms (vs 300 px) | indexing img/s (vs 300 px) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cost = costs.get(row["model"])
        if cost:
            base = costs[baseline]
            query = f"{cost['query_ms']:.0f} ({cost['query_ms'] / base['query_ms']:.2f}x)"
            index = f"{cost['index_img_per_s']:.1f} ({cost['index_img_per_s'] / base['index_img_per_s']:.2f}x)"
        else:
            query = index = "-"
        lines.append(
            f"| {row['model']} | {row['variant']} | {row['category_r1']:.3f} | {row['category_map']:.3f} | "
            f"{row['shopper_r1']:.3f} | {row['shopper_r10']:.3f} | {row['shopper_map']:.3f} | {query} | {index} |"
        )
    return lines


def projection_cost_us(vectors: np.ndarray, colour_dimension: int, repeats: int = 2000) -> float:
    """Median time to project one query vector with a centre (what a search adds), in microseconds."""
    from visual_search.core.centre import fit_centre, project

    centre = fit_centre(vectors, colour_dimension)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        project(vectors[0], centre, colour_dimension)
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)) * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--photos", type=int, default=1500)
    parser.add_argument("--adapt-photos", type=int, default=150)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--models", default="lite2-fp32@300,lite2-int8,lite2-fp32@368,lite2-fp32@448")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-costs", action="store_true", help="skip the timing rounds (re-scoring only)")
    args = parser.parse_args()
    from visual_search.core.centre import fit_centre
    from visual_search.core.colour import COLOUR_DIMENSION
    from visual_search.embedders.onnx.embedder import OnnxEmbedder
    from visual_search.services.shopper_sim import shopper_queries

    facts = machine_facts()
    cores = os.cpu_count() or 1
    paths, labels, background_paths = load_dataset(args.photos + args.adapt_photos, args.seed, args.dataset)
    gallery_paths, labels = paths[: args.photos], labels[: args.photos]
    adapt_paths = paths[args.photos :]
    photos = [p.read_bytes() for p in gallery_paths]
    backgrounds = [lambda p=p: decode(p.read_bytes(), 0) for p in background_paths]
    shop = shopper_queries(
        args.queries, len(photos), lambda i: decode(photos[i], 0), seed=args.seed, backgrounds=backgrounds
    )
    adapt_sources = [p.read_bytes() for p in adapt_paths]
    adapt = shopper_queries(
        len(adapt_sources),
        len(adapt_sources),
        lambda i: decode(adapt_sources[i], 0),
        seed=args.seed + 1,
        backgrounds=backgrounds,
    )
    assert not {str(p) for p in adapt_paths} & {str(p) for p in gallery_paths}
    print(f"{len(photos)} gallery photos, {len(shop)} shopper queries, {len(adapt)} adaptation photos", flush=True)
    calibration = Path(__file__).resolve().parent.parent / "demo" / "catalogue"
    models = args.models.split(",")
    started = time.time()
    vectors = {}
    for name in models:
        embedder = OnnxEmbedder.from_name(name, calibration_dir=calibration, intra_op_threads=1, streams=cores)
        tag = (
            f"{name}-{embedder.model_id.replace(':', '_')}-{args.photos}-{args.adapt_photos}-{args.queries}-{args.seed}"
        )

        def compute(embedder=embedder):
            return {
                "gallery": embed_all(embedder, photos),
                "shop": embed_all(embedder, [q.jpeg for q in shop]),
                "adapt": embed_all(embedder, [q.jpeg for q in adapt]),
            }

        vectors[name] = cached(args.cache, tag, compute)
        print(f"{name} embedded at {time.time() - started:.0f} s", flush=True)

    rows = []
    sources = [q.source for q in shop]
    for n, name in enumerate(models):
        v = vectors[name]
        centres = {
            "no centre": None,
            "centre from the catalogue": fit_centre(v["gallery"], COLOUR_DIMENSION),
            "centre from simulated shopper photos": fit_centre(v["adapt"], COLOUR_DIMENSION),
        }
        try:
            centres["centre from live queries (simulated)"] = live_centre(v["adapt"], COLOUR_DIMENSION, args.clients)
        except ImportError:
            pass
        for variant, centre in centres.items():
            gallery = searched(v["gallery"], centre, COLOUR_DIMENSION)
            queries = searched(v["shop"], centre, COLOUR_DIMENSION)
            rows.append({"model": name, "variant": variant, **scores(gallery, labels, queries, sources)})
            print(rows[-1], flush=True)
        if n == 0:
            apply = whitening(searched(v["adapt"], None, COLOUR_DIMENSION))
            gallery, queries = (apply(searched(v[part], None, COLOUR_DIMENSION)) for part in ("gallery", "shop"))
            rows.append(
                {
                    "model": name,
                    "variant": "PCA-whitening 128-d (shrinkage 0.5), fitted on simulated shopper photos",
                    **scores(gallery, labels, queries, sources),
                }
            )
            print(rows[-1], flush=True)
    costs = {}
    projection_us = projection_cost_us(vectors[models[0]]["adapt"], COLOUR_DIMENSION)
    print(f"projecting one query: {projection_us} us", flush=True)
    if not args.no_costs:
        embedders = {name: OnnxEmbedder.from_name(name, calibration_dir=calibration).model for name in models}
        costs = time_costs(embedders, photos[:96], cores)
        print(costs, flush=True)
    for line in markdown(rows, costs, models[0]):
        print(line)
    result = {
        "machine": facts,
        "load_average_at_end": os.getloadavg(),
        "rows": rows,
        "costs": costs,
        "seconds": round(time.time() - started),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
