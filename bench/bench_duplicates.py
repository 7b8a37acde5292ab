"""Precision and recall of the near-duplicate report on made-up duplicates of the clothing photos.

Some originals get four copies each (resized to half, recompressed at JPEG quality 35, cropped 6 % on every side,
mirrored) and are mixed with other photos of the set that get no copy. Ground truth: an original and its copies
form one group. The report's groups are scored by pairs (every two images in one group): precision = true pairs
found / pairs found, recall = true pairs found / true pairs. Per transform: the share of copies grouped with
their original. Writes JSON to stdout.

    nice -n 10 .venv/bin/python bench/bench_duplicates.py --originals 150 --others 850
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_facts  # noqa: E402

from visual_search.bootstrap import build_embedder  # noqa: E402
from visual_search.core.settings import Settings  # noqa: E402
from visual_search.indexes.local.index import LocalIndex  # noqa: E402
from visual_search.services.duplicates import find_duplicates  # noqa: E402
from visual_search.services.indexing import IndexingService, IndexItem  # noqa: E402

CLOTHING = Path("/work/shared/datasets/clothing/images")
THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98)


def make_copies(image: Image.Image) -> dict[str, tuple[Image.Image, dict]]:
    width, height = image.size
    margin_x, margin_y = int(width * 0.06), int(height * 0.06)
    return {
        "resized": (image.resize((width // 2, height // 2), Image.Resampling.LANCZOS), {"quality": 90}),
        "recompressed": (image, {"quality": 35}),
        "cropped": (image.crop((margin_x, margin_y, width - margin_x, height - margin_y)), {"quality": 90}),
        "mirrored": (image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), {"quality": 90}),
    }


def build_catalogue(folder: Path, originals: list[Path], others: list[Path]) -> dict[str, str]:
    """Writes the images; returns key -> group id (the original's key) for originals and copies."""
    truth: dict[str, str] = {}
    for source in originals:
        image = Image.open(source).convert("RGB")
        image.save(folder / source.name, quality=95)
        truth[source.name] = source.name
        for kind, (copy, options) in make_copies(image).items():
            key = f"{source.stem}--{kind}.jpg"
            copy.save(folder / key, **options)
            truth[key] = source.name
    for source in others:
        Image.open(source).convert("RGB").save(folder / source.name, quality=95)
    return truth


def pairs_of(groups: list[list[str]]) -> set[frozenset]:
    return {frozenset(pair) for group in groups for pair in itertools.combinations(group, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--originals", type=int, default=150)
    parser.add_argument("--others", type=int, default=850)
    args = parser.parse_args()
    photos = sorted(CLOTHING.glob("*.jpg"))
    originals, others = photos[1000 : 1000 + args.originals], photos[2000 : 2000 + args.others]
    embedder = build_embedder(Settings(), bulk=True)
    with tempfile.TemporaryDirectory(prefix="bench-duplicates-") as scratch:
        folder = Path(scratch) / "catalogue"
        folder.mkdir()
        truth = build_catalogue(folder, originals, others)
        index = LocalIndex(
            Path(scratch) / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True
        )
        files = sorted(folder.iterdir())
        started = time.perf_counter()
        report = IndexingService(embedder, index).index_items(
            IndexItem(path.name, str(path), path.read_bytes) for path in files
        )
        embed_s = time.perf_counter() - started
        by_group: dict[str, list[str]] = {}
        for key, group in truth.items():
            by_group.setdefault(group, []).append(key)
        true_pairs = pairs_of(list(by_group.values()))
        rows = []
        for threshold in THRESHOLDS:
            started = time.perf_counter()
            found = find_duplicates(index, threshold=threshold)
            pass_s = time.perf_counter() - started
            found_pairs = pairs_of([group.keys for group in found.groups])
            hits = len(found_pairs & true_pairs)
            grouped_with_original = {
                kind: sum(
                    1
                    for original in originals
                    if frozenset({original.name, f"{original.stem}--{kind}.jpg"}) in found_pairs
                )
                / len(originals)
                for kind in ("resized", "recompressed", "cropped", "mirrored")
            }
            rows.append(
                {
                    "threshold": threshold,
                    "pair_precision": round(hits / len(found_pairs), 4) if found_pairs else None,
                    "pair_recall": round(hits / len(true_pairs), 4),
                    "groups": len(found.groups),
                    "copies_grouped_with_original": {k: round(v, 3) for k, v in grouped_with_original.items()},
                    "pass_s": round(pass_s, 2),
                }
            )
        index.close()
    print(
        json.dumps(
            {
                "machine": machine_facts(),
                "images": len(files),
                "failed": len(report.failed),
                "originals": len(originals),
                "others": len(others),
                "embed_s": round(embed_s, 1),
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
