"""Colour fidelity of "match colour" on the clothing photos: does a shopper's photo of a garment rank the garment
above copies of it recoloured to other hues, and at what cost to category retrieval?

    nice -n 10 .venv/bin/python bench/bench_colour_fidelity.py [--dataset DIR] [--photos 300] [--seed 12]

Gallery: `--photos` labelled photos (seeded) whose garment is coloured enough for a hue rotation to show, each
with two recoloured copies (hue +120° and +240° of its coloured pixels, services/shopper_sim.recolour). Query:
a synthetic shopper photo of each original (services/shopper_sim). Reported per colour weight w: the fraction
of queries ranking the original above both copies, the exact-item recall@1 among the whole gallery, and the
category leave-one-out recall@1 / mAP over the originals alone (what colour costs when the label is the goal).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from bench_quality import DATASET, load_dataset
from bench_quality import decode as decode_held
from machine import machine_facts

WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)
HUE_SHIFTS = (85, 170)


def decode(data: bytes, size: int):
    """A decoded photo detached from the decoder's memory budget, which bounds images held at once (this
    benchmark holds a thousand small ones on purpose)."""
    return decode_held(data, size).copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from visual_search.core import colour
    from visual_search.embedders.onnx.embedder import OnnxEmbedder
    from visual_search.services.evaluation import score_retrieval
    from visual_search.services.shopper_sim import make_shopper_photo, recolour

    embedder = OnnxEmbedder.from_name("lite2-fp32", intra_op_threads=1, streams=2)
    size = embedder.spec.size_px
    paths, labels, _ = load_dataset(args.photos * 2, args.seed, args.dataset)
    originals, kept_labels = [], []
    for path, label in zip(paths, labels):  # coloured garments only: a grey coat has no hue to rotate
        image = decode(path.read_bytes(), 0)
        hsv = np.asarray(image.convert("HSV"))
        if (hsv[..., 1] > 64).mean() >= 0.2 and len(originals) < args.photos:
            originals.append(image)
            kept_labels.append(label)
    gallery_images, gallery_items = [], []
    for item, image in enumerate(originals):
        for shift in (0,) + HUE_SHIFTS:
            buffer = io.BytesIO()
            (image if shift == 0 else recolour(image, shift)).save(buffer, "JPEG", quality=90)
            gallery_images.append(decode(buffer.getvalue(), size))
            gallery_items.append(item)
    gallery = embedder.embed(gallery_images)
    queries = []
    for item, image in enumerate(originals):
        jpeg, _ = make_shopper_photo(
            image, lambda item=item: originals[(item + 1) % len(originals)], np.random.default_rng([args.seed, item])
        )
        queries.append(decode(jpeg, size))
    query_signatures = embedder.embed(queries)
    originals_only = gallery[0::3]
    results = {}
    for weight in WEIGHTS:
        weighted = np.stack([colour.query_vector(row, colour.COLOUR_DIMENSION, weight) for row in query_signatures])
        scores = weighted @ gallery.T
        rows = np.arange(len(originals))
        original = scores[rows, rows * 3]
        copies = np.maximum(scores[rows, rows * 3 + 1], scores[rows, rows * 3 + 2])
        best = scores.argmax(axis=1)
        loo_queries = np.stack([colour.query_vector(row, colour.COLOUR_DIMENSION, weight) for row in originals_only])
        category = score_retrieval(originals_only, kept_labels, loo_queries, kept_labels, k=10, same_items=True)
        results[str(weight)] = {
            "original_above_both_copies": round(float(np.mean(original > copies)), 4),
            "exact_item_recall@1": round(float(np.mean(best == rows * 3)), 4),
            "category_recall@1": round(category.recall_at_1, 4),
            "category_map": round(category.mean_average_precision, 4),
        }
        print(weight, json.dumps(results[str(weight)]), flush=True)
    report = {
        "machine": machine_facts(),
        "model": embedder.model_id,
        "garments": len(originals),
        "gallery": len(gallery),
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
