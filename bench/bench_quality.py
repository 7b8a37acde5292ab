"""Retrieval quality of every technique of issue 12 on two benchmarks, with its cost, in one run on one machine.

    nice -n 10 .venv/bin/python bench/bench_quality.py [--dataset DIR] [--photos 5096] [--queries 1000]
        [--sizes 260,300,368] [--seed 12] [--cache DIR] [--out bench-quality.json]

(The figures in docs/BENCHMARKS.md: --photos 2000 --queries 500; about 20 minutes on the shared 2 cores.)

Benchmarks (both on the CC0 clothing photos, `--photos` labelled ones drawn with `--seed`, split in two halves):
- category: leave-one-out within a half; a neighbour is right when it shares the query's label;
- shopper: synthetic shopper photos (services/shopper_sim.py) of `--queries` items against the half's
  untouched originals; right means the exact item (instance recall@1/@10, mAP).
Free parameters (GeM p, QE/DBA n and α, colour weight) are chosen on half A and every figure is reported on
half B. Costs: query ms (one photo, all cores, decode to vector) and indexing images/s (bulk embedder, decode
included), measured in the same run; the machine may be shared, so ratios to the baseline matter more.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import quality_techniques as tq
from machine import machine_facts
from PIL import Image, ImageOps

DATASET = Path("/work/shared/datasets/clothing")
UNLABELLED = {"Not sure", "Other", "Skip"}
FOCUS_MAX_AREA = 0.7  # object focus only crops when the object region is clearly smaller than the frame
FOCUS_MARGIN = 0.1


def load_dataset(count: int, seed: int, dataset: Path = DATASET):
    with open(dataset / "images.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if (dataset / "images" / f"{r['image']}.jpg").is_file()]
    labelled = [r for r in rows if r["label"] not in UNLABELLED]
    listed = {r["image"] for r in rows}
    backgrounds = sorted(p for p in (dataset / "images").glob("*.jpg") if p.stem not in listed)
    chosen = np.random.default_rng(seed).permutation(len(labelled))[:count]
    return (
        [dataset / "images" / f"{labelled[i]['image']}.jpg" for i in chosen],
        [labelled[i]["label"] for i in chosen],
        backgrounds,
    )


def decode(data: bytes, size: int) -> Image.Image:
    from visual_search.core.images import decode_image

    return decode_image(data, min_size_px=size).image


def embed_pass(embedder, images_bytes: list[bytes], flip: bool = False, batch: int = 32) -> dict:
    """avg / GeM / R-MAC vectors, colour descriptors and the object box (fractions of the centre crop)."""
    from visual_search.core.images import to_model_input
    from visual_search.embedders.onnx.activation_regions import activation_saliency, saliency_regions

    size = embedder.spec.size_px
    out = {name: [] for name in ("avg", "gem", "rmac", "colour", "box")}
    for start in range(0, len(images_bytes), batch):
        images = [decode(data, size) for data in images_bytes[start : start + batch]]
        if flip:
            images = [ImageOps.mirror(image) for image in images]
        tensors = np.stack([to_model_input(image, embedder.spec) for image in images])
        embeddings, maps = embedder.run_outputs(tensors, ["embedding", "feature_map"])
        out["avg"].append(tq.unit(embeddings))
        out["gem"].append(tq.gem(maps, 3.0))
        out["rmac"].append(tq.rmac(maps))
        out["colour"].append(np.stack([embedder.object_colour(t, m) for t, m in zip(tensors, maps)]))
        boxes = [saliency_regions(activation_saliency(m), 1)[0][0] for m in maps]
        out["box"].append(np.array([[b.x, b.y, b.w, b.h] for b in boxes], np.float32))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def cached(cache: Path | None, key: str, compute) -> dict:
    """A pass's arrays, from `cache/key.npz` when an earlier run of the same settings saved them."""
    path = cache / f"{key}.npz" if cache else None
    if path and path.is_file():
        with np.load(path) as saved:
            return {name: saved[name] for name in saved.files}
    arrays = compute()
    if path:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
    return arrays


def focus_crops(images_bytes: list[bytes], boxes: np.ndarray, size: int) -> list[bytes | None]:
    """For each photo, a JPEG of its object region (box in centre-crop fractions, plus a margin), or None when
    the region covers most of the frame anyway."""
    crops = []
    for data, (x, y, w, h) in zip(images_bytes, boxes):
        if w * h > FOCUS_MAX_AREA:
            crops.append(None)
            continue
        image = decode(data, size)
        side = min(image.size)
        left0, top0 = (image.width - side) / 2, (image.height - side) / 2
        x0, y0 = max(0.0, x - FOCUS_MARGIN), max(0.0, y - FOCUS_MARGIN)
        x1, y1 = min(1.0, x + w + FOCUS_MARGIN), min(1.0, y + h + FOCUS_MARGIN)
        region = image.crop(
            (round(left0 + x0 * side), round(top0 + y0 * side), round(left0 + x1 * side), round(top0 + y1 * side))
        )
        buffer = io.BytesIO()
        region.save(buffer, "PNG")
        crops.append(buffer.getvalue())
    return crops


def time_costs(embedders: dict, images_bytes: list[bytes], cores: int, rounds: int = 5) -> dict:
    """Per named embedder: query ms (median of single photos, all cores, decode to vector) and indexing img/s
    (bulk: one single-threaded stream per core, batches of 32, decode included), in interleaved rounds so that
    the load of a shared machine falls on every configuration alike; the median round is kept."""
    from visual_search.embedders.onnx.embedder import OnnxEmbedder

    samples = {name: {"query_ms": [], "index_img_per_s": []} for name in embedders}
    for _ in range(rounds):
        for name, model in embedders.items():
            query = OnnxEmbedder(model, intra_op_threads=cores)
            bulk = OnnxEmbedder(model, intra_op_threads=1, streams=cores, batch_size=16)
            size = model.spec.size_px
            query.embed([decode(images_bytes[0], size)])
            bulk.embed([decode(d, size) for d in images_bytes[:16]])
            times = []
            for data in images_bytes[:12]:
                started = time.perf_counter()
                query.embed([decode(data, size)])
                times.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            for start in range(0, 64, 32):
                bulk.embed([decode(d, size) for d in images_bytes[start : start + 32]])
            samples[name]["query_ms"].append(statistics.median(times))
            samples[name]["index_img_per_s"].append(64 / (time.perf_counter() - started))
    return {
        name: {key: round(statistics.median(values), 2) for key, values in measured.items()}
        for name, measured in samples.items()
    }


def cost_of(query_passes: list[str], index_passes: list[str], costs: dict, today: str) -> dict:
    """Query ms and indexing img/s of a technique from the measured single passes it needs, and ratios to today."""
    query_ms = sum(costs[name]["query_ms"] for name in query_passes)
    index_img_per_s = 1.0 / sum(1.0 / costs[name]["index_img_per_s"] for name in index_passes)
    return {
        "query_ms": round(query_ms, 1),
        "query_vs_today": round(query_ms / costs[today]["query_ms"], 2),
        "index_img_per_s": round(index_img_per_s, 1),
        "index_vs_today": round(index_img_per_s / costs[today]["index_img_per_s"], 2),
    }


def score(queries, gallery, query_labels, gallery_labels, same_items: bool) -> dict:
    from visual_search.services.evaluation import score_retrieval

    result = score_retrieval(gallery, gallery_labels, queries, query_labels, k=10, same_items=same_items)
    return {
        "r1": round(result.recall_at_1, 4),
        "r10": round(result.recall_at_k, 4),
        "map": round(result.mean_average_precision, 4),
    }


def evaluate(make, half: np.ndarray, labels: list[str], shop_rows: np.ndarray, shop_sources: np.ndarray) -> dict:
    """Both benchmarks on one half. `make(photo_rows, shop_rows)` gives (cat queries, gallery, shop queries)."""
    cat_queries, gallery, shop_queries = make(half, shop_rows)
    half_labels = [labels[i] for i in half]
    position = {int(photo): local for local, photo in enumerate(half)}
    category = score(cat_queries, gallery, half_labels, half_labels, same_items=True)
    ids = [str(i) for i in range(len(half))]
    shopper = score(shop_queries, gallery, [str(position[int(s)]) for s in shop_sources], ids, same_items=False)
    return {"category": category, "shopper": shopper}


def markdown_row(row: dict) -> str:
    category, shopper, cost = row["B"]["category"], row["B"]["shopper"], row["cost"]
    on_a = row["A"]["category"]["map"] + row["A"]["shopper"]["map"]
    settings = ", ".join(str(v) for v in row["settings"]) if row["settings"] else ""
    return (
        f"| {row['technique']} | {settings} | {category['r1']:.3f} | {category['map']:.3f} | {shopper['r1']:.3f} | "
        f"{shopper['r10']:.3f} | {shopper['map']:.3f} | {cost['query_ms']:.0f} ({cost['query_vs_today']:.2f}x) | "
        f"{cost['index_img_per_s']:.1f} ({cost['index_vs_today']:.2f}x) | {on_a:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET, help="the clothing data set (images/, images.csv)")
    parser.add_argument("--photos", type=int, default=5096)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sizes", default="260,300,368")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cache", type=Path, help="keep each pass's vectors here, to resume or re-score a run")
    args = parser.parse_args()
    from visual_search.embedders.onnx.embedder import OnnxEmbedder
    from visual_search.services.shopper_sim import shopper_queries

    cores = os.cpu_count() or 1
    sizes = [int(s) for s in args.sizes.split(",")]
    paths, labels, background_paths = load_dataset(args.photos, args.seed, args.dataset)
    photos = [p.read_bytes() for p in paths]
    order = np.random.default_rng([args.seed, 7]).permutation(len(photos))
    halves = {"A": np.sort(order[: len(order) // 2]), "B": np.sort(order[len(order) // 2 :])}
    shop, shop_half, shop_sources = [], [], []
    for name, half in halves.items():
        made = shopper_queries(
            args.queries // 2,
            len(half),
            lambda i, half=half: decode(photos[half[i]], 0),
            seed=args.seed,
            backgrounds=[lambda p=p: decode(p.read_bytes(), 0) for p in background_paths],
        )
        shop += [q.jpeg for q in made]
        shop_half += [name] * len(made)
        shop_sources += [int(half[q.source]) for q in made]
    shop_half, shop_sources = np.array(shop_half), np.array(shop_sources)
    print(f"{len(photos)} photos, {len(shop)} shopper queries, sizes {sizes}", flush=True)

    started = time.time()
    from visual_search.core.colour import COLOUR_DESCRIPTOR_ID
    from visual_search.embedders.lite2_builder.graph import BUILDER_VERSION

    embedders = {
        size: OnnxEmbedder.from_name(f"lite2-fp32@{size}-avg", intra_op_threads=1, streams=cores) for size in sizes
    }
    tag = f"{args.photos}-{args.queries}-{args.seed}-b{BUILDER_VERSION}-{COLOUR_DESCRIPTOR_ID}"
    P, S = {}, {}
    for size in sizes:
        P[size] = cached(args.cache, f"photos-{size}-{tag}", lambda size=size: embed_pass(embedders[size], photos))
        S[size] = cached(args.cache, f"shop-{size}-{tag}", lambda size=size: embed_pass(embedders[size], shop))
        print(f"{size} px done at {time.time() - started:.0f} s", flush=True)
    print(f"passes done in {time.time() - started:.0f} s", flush=True)
    base = sizes[0]
    flipped = cached(args.cache, f"flipped-{base}-{tag}", lambda: embed_pass(embedders[base], photos, flip=True))["avg"]
    focus = {}
    for key, source, images in (("photos", P[base], photos), ("shop", S[base], shop)):
        crops = focus_crops(images, source["box"], base)
        cropped = [c for c in crops if c is not None]
        vectors = cached(
            args.cache, f"focus-{key}-{base}-{tag}", lambda cropped=cropped: embed_pass(embedders[base], cropped)
        )["avg"]
        merged, taken = source["avg"].copy(), iter(vectors)
        for i, crop in enumerate(crops):
            if crop is not None:
                merged[i] = next(taken)
        focus[key] = (merged, sum(c is not None for c in crops))
    print(f"all passes done in {time.time() - started:.0f} s", flush=True)

    def plain(size, pooling="avg"):
        return lambda h, s: (P[size][pooling][h], P[size][pooling][h], S[size][pooling][s])

    B = str(base)
    # name -> (make, passes per query, passes per indexed image); a pass is a forward run at that size.
    techniques = {f"avg pool, {size} px": (plain(size), [str(size)], [str(size)]) for size in sizes}
    techniques[f"GeM p=3, {base} px"] = (plain(base, "gem"), [B], [B])
    techniques[f"R-MAC (3 levels), {base} px"] = (plain(base, "rmac"), [B], [B])
    for size in sizes[1:]:
        techniques[f"GeM p=3, {size} px"] = (plain(size, "gem"), [str(size)], [str(size)])
        techniques[f"R-MAC (3 levels), {size} px"] = (plain(size, "rmac"), [str(size)], [str(size)])
        techniques[f"multi-scale avg {base}+{size} px"] = (
            lambda h, s, size=size: (
                (tq.unit(P[base]["avg"][h] + P[size]["avg"][h]),) * 2
                + (tq.unit(S[base]["avg"][s] + S[size]["avg"][s]),)
            ),
            [B, str(size)],
            [B, str(size)],
        )
    # The product's default after this benchmark: R-MAC at 300 px, colour descriptors stored (searched with w = 0).
    techniques["default now: lite2-fp32 (R-MAC, 300 px, colour stored)"] = (
        plain(300, "rmac"),
        ["default"],
        ["default"],
    )
    techniques[f"flip-augmented gallery, {base} px"] = (
        lambda h, s: (P[base]["avg"][h], tq.unit(P[base]["avg"][h] + flipped[h]), S[base]["avg"][s]),
        [B],
        [B, B],
    )
    techniques[f"object focus for queries, {base} px"] = (
        lambda h, s: (focus["photos"][0][h], P[base]["avg"][h], focus["shop"][0][s]),
        [B, B],
        [B],
    )
    tuned = {}
    for n in (1, 2, 3, 5):
        for alpha in (1.0, 3.0):
            tuned.setdefault(f"alpha-QE re-rank, {base} px", []).append(
                (
                    (n, alpha),
                    lambda h, s, n=n, a=alpha: (
                        tq.alpha_query_expansion(P[base]["avg"][h], P[base]["avg"][h], n, a, True),
                        P[base]["avg"][h],
                        tq.alpha_query_expansion(S[base]["avg"][s], P[base]["avg"][h], n, a, False),
                    ),
                )
            )
            tuned.setdefault(f"DBA, {base} px", []).append(
                (
                    (n, alpha),
                    lambda h, s, n=n, a=alpha: (
                        P[base]["avg"][h],
                        tq.database_augmentation(P[base]["avg"][h], n, a),
                        S[base]["avg"][s],
                    ),
                )
            )
    for weight in (0.1, 0.25, 0.5, 1.0):
        tuned.setdefault(f"colour fused, {base} px", []).append(
            (
                (weight,),
                lambda h, s, w=weight: (
                    tq.fused(P[base]["avg"][h], P[base]["colour"][h], w),
                    tq.fused(P[base]["avg"][h], P[base]["colour"][h], 1.0),
                    tq.fused(S[base]["avg"][s], S[base]["colour"][s], w),
                ),
            )
        )
    tuned_passes = {f"colour fused, {base} px": ([f"{B}+colour"], [f"{B}+colour"])}

    def run(make, half_name):
        return evaluate(
            make,
            halves[half_name],
            labels,
            np.flatnonzero(shop_half == half_name),
            shop_sources[shop_half == half_name],
        )

    from dataclasses import replace

    timing_models = {
        str(size): replace(embedders[size].model, colour_descriptor=False, dimension=1280) for size in sizes
    }
    timing_models[f"{B}+colour"] = replace(embedders[base].model, colour_descriptor=True)
    timing_models["default"] = OnnxEmbedder.from_name("lite2-fp32").model
    costs = time_costs(timing_models, photos[:96], cores)
    rows = []
    for name, (make, query_passes, index_passes) in techniques.items():
        rows.append(
            {
                "technique": name,
                "settings": "",
                "chosen_on_A": None,
                "A": run(make, "A"),
                "B": run(make, "B"),
                "cost": cost_of(query_passes, index_passes, costs, B),
            }
        )
    for family, grid in tuned.items():
        scored = [(settings, run(make, "A"), make) for settings, make in grid]
        best = max(scored, key=lambda item: item[1]["category"]["map"] + item[1]["shopper"]["map"])
        query_passes, index_passes = tuned_passes.get(family, ([B], [B]))
        rows.append(
            {
                "technique": family,
                "settings": best[0],
                "chosen_on_A": {str(s): r for s, r, _ in scored},
                "A": best[1],
                "B": run(best[2], "B"),
                "cost": cost_of(query_passes, index_passes, costs, B),
            }
        )
    everything = np.arange(len(photos))
    for row in rows:
        print(markdown_row(row), flush=True)

    result = {
        "machine": machine_facts(),
        "photos": len(photos),
        "half_sizes": {k: len(v) for k, v in halves.items()},
        "shopper_queries": {k: int((shop_half == k).sum()) for k in halves},
        "focus_cropped": {k: v[1] for k, v in focus.items()},
        "rows": rows,
        "costs": costs,
        "all_photos_category_loo": {
            name: score(*make(everything, np.arange(0))[:2], labels, labels, True)
            for name, (make, _, _) in techniques.items()
        },
        "seconds": round(time.time() - started),
    }
    print(json.dumps({k: result[k] for k in ("costs", "all_photos_category_loo")}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
