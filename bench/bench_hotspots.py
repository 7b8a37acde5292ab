"""How well the hotspots find each item of a photo with several: composites of two catalogue photos pasted side
by side on a plain background (random sizes, offsets and background colour), the hotspots (services/hotspots.py,
at most 4) scored by IoU against each pasted photo's rectangle; the model's own proposer alone
(RegionProposer.propose_regions on the whole photo) is measured beside it as the baseline.

A composite passes when each of its two items has a region with IoU >= 0.5 (issue 14 asks for >= 70 %).

    .venv/bin/python bench/bench_hotspots.py [--composites 200] [--seed 14]     # JSON on stdout
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`
from PIL import Image, ImageOps

from visual_search.bootstrap import build_embedder  # noqa: E402
from visual_search.core.images import CropBox  # noqa: E402
from visual_search.core.ports import RegionProposer  # noqa: E402
from visual_search.core.settings import Settings  # noqa: E402
from visual_search.services.hotspots import iou, propose_hotspots  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "datasets" / "clothing"
UNLABELLED = {"Not sure", "Other", "Skip"}
CANVAS = (1200, 800)
IOU_NEEDED = 0.5


def photos_by_label(dataset: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    with open(dataset / "images.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            path = dataset / "images" / f"{row['image']}.jpg"
            if row["label"] not in UNLABELLED and path.exists():
                found.setdefault(row["label"], []).append(path)
    return found


def composite(left: Path, right: Path, rng: random.Random) -> tuple[Image.Image, list[CropBox]]:
    """The two photos, each scaled into its half at 55-90 % of it and offset at random, on a plain colour."""
    background = tuple(rng.randint(170, 250) for _ in range(3))
    canvas = Image.new("RGB", CANVAS, background)
    boxes = []
    half_width = CANVAS[0] // 2
    for slot, path in enumerate((left, right)):
        with Image.open(path) as source:
            photo = ImageOps.exif_transpose(source).convert("RGB")
        scale = rng.uniform(0.55, 0.9) * min(half_width / photo.width, CANVAS[1] / photo.height)
        photo = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))))
        x = slot * half_width + rng.randint(0, half_width - photo.width)
        y = rng.randint(0, CANVAS[1] - photo.height)
        canvas.paste(photo, (x, y))
        boxes.append(CropBox(x / CANVAS[0], y / CANVAS[1], photo.width / CANVAS[0], photo.height / CANVAS[1]))
    return canvas, boxes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--composites", type=int, default=200)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    facts = machine_facts()
    embedder = build_embedder(Settings())
    if not isinstance(embedder, RegionProposer):
        print(f"{embedder.model_id} proposes no regions", file=sys.stderr)
        return 1
    rng = random.Random(args.seed)
    by_label = photos_by_label(args.dataset)
    labels = sorted(by_label)
    methods = {
        "hotspots": lambda image: [box for box, _ in propose_hotspots(embedder, image)],
        "proposer_alone": lambda image: [box for box, _ in embedder.propose_regions(image, max_regions=4)],
    }
    tallies = {name: {"passed": 0, "items": 0, "ious": [], "seconds": [], "regions": 0} for name in methods}
    for _ in range(args.composites):
        first, second = rng.sample(labels, 2)  # two different kinds of item, e.g. a hat and shoes
        image, truths = composite(rng.choice(by_label[first]), rng.choice(by_label[second]), rng)
        for name, propose in methods.items():
            tally = tallies[name]
            started = time.perf_counter()
            regions = propose(image)
            tally["seconds"].append(time.perf_counter() - started)
            best = [max((iou(truth, region) for region in regions), default=0.0) for truth in truths]
            tally["ious"] += best
            tally["regions"] += len(regions)
            tally["items"] += sum(value >= IOU_NEEDED for value in best)
            tally["passed"] += all(value >= IOU_NEEDED for value in best)
    # A photo of one item should get no hotspots (the whole photo is searched already).
    singles = [rng.choice(by_label[rng.choice(labels)]) for _ in range(args.composites // 2)]
    with_hotspots = 0
    for path in singles:
        with Image.open(path) as source:
            with_hotspots += bool(propose_hotspots(embedder, ImageOps.exif_transpose(source).convert("RGB")))
    result = {
        "bench": "hotspots",
        "model": embedder.model_id,
        "composites": args.composites,
        "seed": args.seed,
        "iou_needed": IOU_NEEDED,
        "single_item_photos_given_hotspots": round(with_hotspots / len(singles), 3),
        "machine": facts,
    }
    for name, tally in tallies.items():
        seconds = sorted(tally["seconds"])
        result[name] = {
            "composites_with_every_item_found": round(tally["passed"] / args.composites, 3),
            "items_found": round(tally["items"] / (2 * args.composites), 3),
            "mean_best_iou": round(sum(tally["ious"]) / len(tally["ious"]), 3),
            "regions_per_photo": round(tally["regions"] / args.composites, 2),
            "median_ms": round(1000 * seconds[len(seconds) // 2], 1),
        }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
