"""Chooses the UI's match tiers ("Very close", "Similar", "Loosely related") from the precision of same-label
matches per score band on the clothing set.

Indexes a label-stratified sample of the labelled clothing photos with the product's own model and index, asks
each photo's "more like this" (search by key, itself excluded, k neighbours: exactly what the UI shows), and
counts, per 0.05-wide score band, how many neighbours share the query's label. A tier starts at the lowest band
edge from which every higher band keeps that tier's precision.

    .venv/bin/python bench/bench_match_tiers.py [--count 2000] [--k 100]     # JSON on stdout
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

from visual_search.bootstrap import build_embedder  # noqa: E402
from visual_search.core.settings import Settings  # noqa: E402
from visual_search.indexes.local.index import LocalIndex  # noqa: E402
from visual_search.services.indexing import IndexingService, IndexItem  # noqa: E402
from visual_search.services.search import SearchService  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "datasets" / "clothing"
UNLABELLED = {"Not sure", "Other", "Skip"}
BAND = 0.05
# Precision a tier must keep, from its threshold upwards: four in five "Very close" matches are the same kind of
# item, three in five "Similar" ones are, and "Loosely related" is still about twice chance (the chance that two
# random photos share a label, printed as `chance_precision`). Below that a match is weak and hidden by default.
TIER_PRECISION = {"Very close": 0.8, "Similar": 0.6, "Loosely related": 0.4}


def sample(dataset: Path, count: int) -> list[tuple[Path, str]]:
    """`count` labelled photos, the same share of each label as the whole set, in a stable hashed order."""
    by_label: dict[str, list[Path]] = defaultdict(list)
    with open(dataset / "images.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            path = dataset / "images" / f"{row['image']}.jpg"
            if row["label"] not in UNLABELLED and path.exists():
                by_label[row["label"]].append(path)
    total = sum(len(paths) for paths in by_label.values())
    chosen = []
    for label, paths in sorted(by_label.items()):
        paths.sort(key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
        chosen += [(path, label) for path in paths[: max(1, round(count * len(paths) / total))]]
    return chosen


def band_precision(pairs: list[tuple[float, bool]]) -> list[dict]:
    bands: dict[int, list[bool]] = defaultdict(list)
    for score, same in pairs:
        bands[int(score / BAND)].append(same)
    return [
        {
            "from": round(b * BAND, 2),
            "to": round((b + 1) * BAND, 2),
            "matches": len(v),
            "same_label_precision": round(sum(v) / len(v), 3),
        }
        for b, v in sorted(bands.items(), reverse=True)
    ]


def thresholds(bands: list[dict], min_matches: int = 30) -> dict[str, float | None]:
    """Per tier, the lowest band edge above which every band (with enough matches to judge) keeps its precision."""
    chosen: dict[str, float | None] = {}
    for tier, precision in TIER_PRECISION.items():
        edge = None
        for band in bands:  # descending score
            if band["matches"] >= min_matches and band["same_label_precision"] < precision:
                break
            edge = band["from"]
        chosen[tier] = edge
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--count", type=int, default=2000)
    # 100, the most the UI ever shows: every query then contributes pairs to the low bands too, not only the
    # queries whose nearest items all score low.
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    facts = machine_facts()
    photos = sample(args.dataset, args.count)
    embedder = build_embedder(Settings(), bulk=True)
    with tempfile.TemporaryDirectory() as scratch:
        index = LocalIndex(
            Path(scratch) / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True
        )
        items = [IndexItem(path.name, str(path), path.read_bytes, label) for path, label in photos]
        report = IndexingService(embedder, index).index_items(items)
        search = SearchService(embedder, index)
        labels = {path.name: label for path, label in photos}
        pairs = []
        for key in labels:
            if index.get([key]):
                for hit in search.search_key(key, k=args.k).hits:
                    pairs.append((hit.score, hit.record.label == labels[key]))
        index.close()
    bands = band_precision(pairs)
    shares = [count / len(photos) for count in Counter(label for _, label in photos).values()]
    result = {
        "bench": "match_tiers",
        "model": embedder.model_id,
        "photos": report.indexed,
        "k": args.k,
        "neighbours": len(pairs),
        "overall_same_label_precision": round(sum(s for _, s in pairs) / len(pairs), 3),
        "chance_precision": round(sum(share * share for share in shares), 3),
        "tier_precision": TIER_PRECISION,
        "thresholds": thresholds(bands),
        "bands": bands,
        "machine": facts,
    }
    json.dump(result, sys.stdout, indent=2)
    print(file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
