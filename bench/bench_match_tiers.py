"""Chooses the UI's match tiers ("Very close", "Similar", "Loosely related") from what shoppers ask, measured on
the clothing set: "this exact item, photographed differently" and "more of the same kind".

Indexes a label-stratified sample of the labelled clothing photos with the product's own model and index, then
asks two kinds of question, each answered with k neighbours (exactly what the UI shows):

- **shopper**: a synthetic shopper photo (services/shopper_sim.py: crop, rotation, perspective, blur, light,
  downscale, clutter from the unlabelled photos, JPEG 30-60) of a gallery item, searched as an upload. The
  exact item is the one right answer; other hits count as the same kind when they share its label.
- **category**: each photo's "more like this" (search by key, itself excluded); a hit is the same kind when it
  shares the query's label.

The photos are split in two halves by a hash of their name. Every threshold is fitted on half A's queries and
every reported figure is from half B's (the gallery holds both halves, as a catalogue would):

- "Loosely related" and "Similar" start at the lowest score band edge from which every band keeps that tier's
  same-label precision in the category answers (0.4 and 0.6), as before.
- "Very close" (the strong tier) is the absolute score `strong_score` OR, for the best hit of an answer when it
  scores at least `strong_floor`, standing out from the pack: the `pack`-th hit scores at most `standout` times
  the best. (The exact item photographed badly scores like a good category neighbour,
  0.75-0.93, so the score alone cannot tell them apart; but it stands clear of the rest of its answer, while the
  best category neighbour is one of many alike.) Of the rules that make the exact item, when ranked first,
  strong in at least `STRONG_RECALL_FIT` of half A's shopper answers (the target, 0.8, plus a margin for the
  other half), the one chosen is the one whose strong hits most often share the query's label (or are the
  exact item), taking the worse of the category and the shopper answers.

    .venv/bin/python bench/bench_match_tiers.py [--count 2000] [--queries 500] [--k 100] [--raw FILE]
    .venv/bin/python bench/bench_match_tiers.py --from-raw FILE     # re-fit from saved answers, no model run

JSON on stdout. `--raw` keeps the answers (scores and flags only) so the fit can be re-run without embedding.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "datasets" / "clothing"
UNLABELLED = {"Not sure", "Other", "Skip"}
BAND = 0.05
SEED = 21
# Precision a tier must keep, from its threshold upwards, in the category answers: three in five "Similar" matches
# are the same kind of item, and "Loosely related" is still about four times chance (`chance_precision`).
# Below that a match is weak and hidden by default.
TIER_PRECISION = {"Similar": 0.6, "Loosely related": 0.4}
# What "Very close" must do: name the exact item, ranked first, in at least 80 % of shopper answers (fitted with
# a margin, so that the half it was not fitted on keeps the 80 %), and otherwise be as rarely wrong as it can.
STRONG_RECALL_TARGET = 0.8
STRONG_RECALL_FIT = 0.85
# The candidate rules searched on half A: absolute thresholds, floors, which hit is "the pack", and how far
# below a hit the pack must be.
STRONG_SCORES = [round(0.80 + 0.01 * i, 2) for i in range(16)]  # 0.80 .. 0.95
STRONG_FLOORS = [round(0.50 + 0.02 * i, 2) for i in range(21)]  # 0.50 .. 0.90
PACKS = [2, 3, 5, 10]
STANDOUTS = [round(0.85 + 0.005 * i, 3) for i in range(31)]  # 0.850 .. 1.000
TODAY = {"strong_score": 0.95, "strong_floor": 1.01, "pack": 2, "standout": 0.0}  # before: 0.95, absolute only


# ---- The data: a sample of labelled photos, halves, and the answers to both kinds of question -------------------


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


def half_of(name: str) -> str:
    """ "A" (fit) or "B" (report), by a hash of the photo's name: stable, and independent of the label."""
    return "A" if int(hashlib.sha256(f"half:{name}".encode()).hexdigest(), 16) % 2 == 0 else "B"


def background_photos(dataset: Path) -> list[Path]:
    """The unlabelled photos of the set (in no label list): clutter for shopper photos, never in the gallery."""
    with open(dataset / "images.csv", newline="") as handle:
        listed = {row["image"] for row in csv.DictReader(handle)}
    return sorted(p for p in (dataset / "images").glob("*.jpg") if p.stem not in listed)


def collect(dataset: Path, count: int, queries: int, k: int) -> dict:
    """Index the sample and ask both questions. Each answer is {half, kind, label, hits: [[score, same, exact]]}."""
    from visual_search.bootstrap import build_embedder
    from visual_search.core.images import decode_image
    from visual_search.core.settings import Settings
    from visual_search.indexes.local.index import LocalIndex
    from visual_search.services.indexing import IndexingService, IndexItem
    from visual_search.services.search import SearchService
    from visual_search.services.shopper_sim import shopper_queries

    photos = sample(dataset, count)
    labels = {path.name: label for path, label in photos}
    backgrounds = background_photos(dataset)
    embedder = build_embedder(Settings(), bulk=True)
    answers = []
    with tempfile.TemporaryDirectory() as scratch:
        index = LocalIndex(
            Path(scratch) / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True
        )
        items = [IndexItem(path.name, str(path), path.read_bytes, label) for path, label in photos]
        report = IndexingService(embedder, index).index_items(items)
        search = SearchService(embedder, index)
        for key, label in labels.items():
            hits = search.search_key(key, k=k).hits
            answers.append(
                {"half": half_of(key), "kind": "category", "label": label, "hits": _flags(hits, label, None)}
            )
        for half in ("A", "B"):
            members = [path for path, _ in photos if half_of(path.name) == half]
            made = shopper_queries(
                queries // 2,
                len(members),
                lambda i, members=members: decode_image(members[i].read_bytes()).image,
                seed=SEED,
                backgrounds=[lambda p=p: decode_image(p.read_bytes()).image for p in backgrounds],
            )
            for query in made:
                key = members[query.source].name
                hits = search.search_image(query.jpeg, k=k).hits
                answers.append(
                    {
                        "half": half,
                        "kind": "shopper",
                        "label": labels[key],
                        "steps": list(query.steps),
                        "hits": _flags(hits, labels[key], key),
                    }
                )
        index.close()
    return {"model": embedder.model_id, "photos": report.indexed, "k": k, "answers": answers}


def _flags(hits, label: str, exact_key: str | None) -> list[list]:
    return [[round(hit.score, 5), hit.record.label == label, hit.record.key == exact_key] for hit in hits]


# ---- The rule (the same as frontend/tiers.js) and its fit ---------------------------------------------------------


class Hits:
    """Every hit of some answers as flat arrays (score, its pack's ratio to it per candidate pack, right = same
    label or the exact item, kind), plus where the exact item ranked first: what the rule needs, fast enough to
    try thousands of rules."""

    def __init__(self, answers: Iterable[dict]):
        score, right, category, exact_first = [], [], [], []
        pack_ratio: dict[int, list[float]] = {pack: [] for pack in PACKS}
        for answer in answers:
            hits = answer["hits"]
            for rank, (value, same, exact) in enumerate(hits):
                score.append(value)
                for pack in PACKS:
                    pack_ratio[pack].append(pack_ratio_of([hit[0] for hit in hits], pack) if rank == 0 else np.inf)
                right.append(same or exact)
                category.append(answer["kind"] == "category")
                exact_first.append(exact and rank == 0)
        self.score = np.array(score)
        self.pack_ratio = {pack: np.array(ratios) for pack, ratios in pack_ratio.items()}
        self.right, self.category, self.exact_first = np.array(right), np.array(category), np.array(exact_first)

    def strong(self, rule: dict) -> np.ndarray:
        """frontend/tiers.js isStrong(): high on its own, or not low and standing out from the pack."""
        return (self.score >= rule["strong_score"]) | (
            (self.score >= rule["strong_floor"]) & (self.pack_ratio[rule["pack"]] <= rule["standout"])
        )

    def figures(self, rule: dict) -> dict:
        """How the rule words these hits: the share of shopper answers whose exact item, ranked first, reads
        strong, and the precision (same label or the exact item) of what it calls strong, per kind of question."""
        strong = self.strong(rule)
        exact_first = int(self.exact_first.sum())
        figures = {
            "exact_first": exact_first,
            "exact_first_strong": round(float((strong & self.exact_first).sum()) / max(exact_first, 1), 3),
            "strong_hits": {},
            "strong_precision": {},
            "other_label_strong": int((strong & ~self.right).sum()),
        }
        for kind, members in (("category", self.category), ("shopper", ~self.category)):
            called = strong & members
            figures["strong_hits"][kind] = int(called.sum())
            figures["strong_precision"][kind] = (
                round(float((called & self.right).sum()) / int(called.sum()), 3) if called.any() else None
            )
        return figures


def pack_ratio_of(scores: list[float], pack: int) -> float:
    """The pack's score over the best (frontend/tiers.js packRatio): the pack is the `pack`-th hit, or the last
    when fewer came back; an answer of one hit has no pack to stand out from (infinity)."""
    pack_rank = min(pack, len(scores)) - 1
    if pack_rank < 1 or scores[0] <= 0:
        return float("inf")
    return scores[pack_rank] / scores[0]


def fit_strong(hits: Hits) -> dict:
    """Of the rules whose exact-first-strong share reaches STRONG_RECALL_FIT, the most precise (the worse of the
    category and shopper precision); among equals the strictest (highest floor, smallest standout, highest
    absolute score)."""
    best_rule, best_key = None, None
    for pack, strong_score, strong_floor, standout in itertools.product(PACKS, STRONG_SCORES, STRONG_FLOORS, STANDOUTS):
        rule = {"strong_score": strong_score, "strong_floor": strong_floor, "pack": pack, "standout": standout}
        figures = hits.figures(rule)
        if figures["exact_first_strong"] < STRONG_RECALL_FIT:
            continue
        precision = min(p for p in figures["strong_precision"].values() if p is not None)
        key = (precision, strong_floor, -standout, strong_score, -pack)
        if best_key is None or key > best_key:
            best_rule, best_key = rule, key
    assert best_rule is not None, "no candidate rule reaches the exact-item share"
    return best_rule


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


def band_thresholds(bands: list[dict], min_matches: int = 30) -> dict[str, float | None]:
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


def distribution(scores: list[float]) -> dict:
    """Percentiles of a list of scores (what the shopper and category scores look like side by side)."""
    ordered = sorted(scores)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"n": len(ordered), "p10": at(0.1), "p25": at(0.25), "p50": at(0.5), "p75": at(0.75), "p90": at(0.9)}


def describe(answers: list[dict]) -> dict:
    """Score distributions per kind of hit: the exact item (ranked first or not), the best hit of each question,
    same-label and other-label hits of both questions with their ratio to the answer's best, and the runner-up's
    ratio to the best by what the best is."""
    groups: dict[str, list[float]] = defaultdict(list)
    for answer in answers:
        hits = answer["hits"]
        if not hits:
            continue
        best = hits[0][0]
        if len(hits) > 1:
            first = "exact item" if hits[0][2] else ("same label" if hits[0][1] else "other label")
            groups[f"{answer['kind']}: runner-up / best, best is {first}"].append(hits[1][0] / best)
        for rank, (score, same, exact) in enumerate(hits):
            kind = answer["kind"]
            if exact:
                groups[
                    "shopper: exact item, ranked first" if rank == 0 else "shopper: exact item, ranked lower"
                ].append(score)
                continue
            what = "same label" if same else "other label"
            groups[f"{kind}: {what}"].append(score)
            groups[f"{kind}: {what}, ratio to best"].append(score / best)
            if rank == 0:
                groups[f"{kind}: best hit, {what}"].append(score)
    return {name: distribution(scores) for name, scores in sorted(groups.items())}


def analyse(raw: dict) -> dict:
    halves = {half: [a for a in raw["answers"] if a["half"] == half] for half in ("A", "B")}
    fit_pairs = [(score, same) for a in halves["A"] if a["kind"] == "category" for score, same, _ in a["hits"]]
    bands_a = band_precision(fit_pairs)
    chosen = band_thresholds(bands_a)
    strong = fit_strong(Hits(halves["A"]))
    report = Hits(halves["B"])
    report_pairs = [(score, same) for a in halves["B"] if a["kind"] == "category" for score, same, _ in a["hits"]]
    shopper_b = [a for a in halves["B"] if a["kind"] == "shopper"]
    return {
        "bench": "match_tiers",
        "model": raw["model"],
        "photos": raw["photos"],
        "k": raw["k"],
        "queries": {
            half: {kind: sum(a["kind"] == kind for a in answers) for kind in ("category", "shopper")}
            for half, answers in halves.items()
        },
        "fitted_on_A": {"Very close": strong, **chosen},
        "reported_on_B": {
            "chosen": report.figures(strong),
            "today (0.95 absolute)": report.figures(TODAY),
            "exact_item_ranked_first": f"{sum(a['hits'][0][2] for a in shopper_b)} of {len(shopper_b)}",
        },
        "distributions_B": describe(halves["B"]),
        "category_bands_A": bands_a,
        "category_bands_B": band_precision(report_pairs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=500, help="synthetic shopper photos, half from each half")
    # 100, the most the UI ever shows: every query then contributes pairs to the low bands too.
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--raw", type=Path, help="also save the answers (scores and flags) here")
    parser.add_argument("--from-raw", type=Path, help="fit and report from saved answers instead of running")
    args = parser.parse_args()
    facts = machine_facts()
    if args.from_raw:
        raw = json.loads(args.from_raw.read_text())
    else:
        raw = collect(args.dataset, args.count, args.queries, args.k)
        raw["machine"] = facts
        if args.raw:
            args.raw.write_text(json.dumps(raw))
    result = analyse(raw)
    result["machine"] = raw.get("machine", facts)
    json.dump(result, sys.stdout, indent=2)
    print(file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
