"""Hotspots: up to four items in one query photo, for the shopper to tap (issue 14: "a hat and shoes").

The model's region proposer (RegionProposer, from its last feature map) sees the photo at its input size, where
a 9 x 9 activation grid tends to fuse two neighbouring items into one blob. So it is also asked about each half
of the photo (left, right, top, bottom), where every item is bigger on the grid. Then:
- a box that runs into a half's cut is part of something that continues across it, and is dropped;
- a box nearly as big as the photo is the photo itself (searched already), and is dropped;
- a box that holds most of two separate smaller boxes is a group of items, not one, and is dropped;
- nearby boxes whose crops the search model finds all alike (cosine >= SAME_ITEM_SIMILARITY) are parts of one
  item, and are joined, shown as the strongest of them; far apart, alike boxes are two alike items.
Fewer than two items left means one item: no hotspots. No weights are downloaded: the search model is the only
network involved. bench/bench_hotspots.py measures it (docs/BENCHMARKS.md, "Hotspots").
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from visual_search.core.images import CropBox
from visual_search.core.ports import Embedder, RegionProposer

# (x, y, w, h) of each window, as fractions of the photo: the whole, then its halves.
WINDOWS = ((0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 0.5, 1.0), (0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 0.5))
MAX_COVER = 0.8  # a box over this share of the photo is the photo itself
SAME_ITEM_IOU = 0.5  # boxes overlapping this much show the same item
# Crops this alike are one item: halves of one garment measured 0.6-0.9, two different items 0.2-0.6
# (bench_hotspots.py composites and single photos of the clothing set).
SAME_ITEM_SIMILARITY = 0.65
INSIDE = 0.5  # a box with this share of its area within another is part of what the other shows
MIN_SCORE_SHARE = 0.2  # an item with less than this share of the strongest item's evidence is a speck
MIN_AREA = 0.02  # nor is a box smaller than this share of the photo an item
# Cells above the map's mean are an item's core; its edges fall in the cells around it, so a hotspot's box is grown
# by this (fraction of the photo) on each side: on 80 composites (seed 21) 0.04 found both items in 84 % of them,
# against 62 % unpadded, 78 % at 0.02 and 80 % at 0.06.
EDGE_PAD = 0.04
NEAR = 0.15  # alike boxes further apart than this (fraction of the photo) are two alike items
CUT_MARGIN = 0.02  # a box within this (fraction of the photo) of an inner cut touches it


@dataclass(frozen=True)
class _Candidate:
    box: CropBox
    score: float


def propose_hotspots(model: Embedder, image: Image.Image, max_regions: int = 4) -> list[tuple[CropBox, float]]:
    """At most `max_regions` (box, score) pairs, best first, boxes as fractions of `image`; [] when the photo
    shows fewer than two separate items (one item needs no hotspot: the whole photo is searched already).
    `model` is the search model, which must also be a RegionProposer."""
    if not isinstance(model, RegionProposer):
        return []
    candidates = _without_duplicates(_window_candidates(model, image, max_regions))
    candidates = [c for c in candidates if not _holds_separate_boxes(c, candidates)]
    if len(candidates) < 2:
        return []
    items = sorted(_join_alike(model, image, candidates), key=lambda item: item.score, reverse=True)
    # Specks (a bright button, a logo on the floor) are not items worth a hotspot.
    items = [item for item in items if item.score >= MIN_SCORE_SHARE * items[0].score and _area(item.box) >= MIN_AREA]
    if len(items) < 2:
        return []
    return [(_padded(item.box), round(item.score, 4)) for item in items[:max_regions]]


def _window_candidates(proposer: RegionProposer, image: Image.Image, max_regions: int) -> list[_Candidate]:
    candidates = []
    for window in WINDOWS:
        for box, share in proposer.propose_regions(_crop(image, window), max_regions=max_regions):
            placed = _place(box, window)
            if _area(placed) <= MAX_COVER and not _touches_inner_cut(placed, window):
                candidates.append(_Candidate(placed, share * window[2] * window[3]))
    return candidates


def _without_duplicates(candidates: list[_Candidate]) -> list[_Candidate]:
    kept: list[_Candidate] = []
    for candidate in sorted(candidates, key=lambda c: c.score, reverse=True):
        if all(iou(candidate.box, other.box) < SAME_ITEM_IOU for other in kept):
            kept.append(candidate)
    return kept


def _holds_separate_boxes(candidate: _Candidate, others: list[_Candidate]) -> bool:
    inside = [o.box for o in others if o is not candidate and _share_inside(o.box, candidate.box) >= INSIDE]
    return any(_overlap(a, b) == 0.0 for i, a in enumerate(inside) for b in inside[i + 1 :])


def _join_alike(model: Embedder, image: Image.Image, candidates: list[_Candidate]) -> list[_Candidate]:
    """Groups of candidates whose crops all look alike (complete linkage, so a box spanning two items cannot
    chain them together), each group as its strongest member with the group's total score."""
    vectors = model.embed([_crop(image, (c.box.x, c.box.y, c.box.w, c.box.h)) for c in candidates])
    similarity = vectors @ vectors.T
    for i, first in enumerate(candidates):
        for j, second in enumerate(candidates):
            if _gap(first.box, second.box) > NEAR:
                similarity[i, j] = -1.0  # two shirts side by side are two items however alike they look
    groups = [[i] for i in range(len(candidates))]
    while True:
        pairs = [
            (min(similarity[i, j] for i in a for j in b), x, y)
            for x, a in enumerate(groups)
            for y, b in enumerate(groups)
            if x < y
        ]
        best = max(pairs, default=None)
        if best is None or best[0] < SAME_ITEM_SIMILARITY:
            break
        _, x, y = best
        groups[x] += groups.pop(y)
    # A group is shown as its strongest box: the union of partial views overshoots the item.
    return [
        _Candidate(
            max((candidates[i] for i in group), key=lambda c: c.score).box, sum(candidates[i].score for i in group)
        )
        for group in groups
    ]


def iou(a: CropBox, b: CropBox) -> float:
    overlap = _overlap(a, b)
    union = _area(a) + _area(b) - overlap
    return overlap / union if union > 0 else 0.0


def _crop(image: Image.Image, window: tuple[float, float, float, float]) -> Image.Image:
    x, y, w, h = window
    if (x, y, w, h) == (0.0, 0.0, 1.0, 1.0):
        return image
    width, height = image.size
    return image.crop((round(x * width), round(y * height), round((x + w) * width), round((y + h) * height)))


def _place(box: CropBox, window: tuple[float, float, float, float]) -> CropBox:
    x, y, w, h = window
    return CropBox(x=x + box.x * w, y=y + box.y * h, w=box.w * w, h=box.h * h)


def _area(box: CropBox) -> float:
    return box.w * box.h


def _overlap(a: CropBox, b: CropBox) -> float:
    width = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    height = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return width * height


def _gap(a: CropBox, b: CropBox) -> float:
    """The distance between two boxes (0 when they touch or overlap), in fractions of the photo."""
    dx = max(0.0, max(a.x, b.x) - min(a.x + a.w, b.x + b.w))
    dy = max(0.0, max(a.y, b.y) - min(a.y + a.h, b.y + b.h))
    return max(dx, dy)


def _share_inside(inner: CropBox, outer: CropBox) -> float:
    return _overlap(inner, outer) / _area(inner) if _area(inner) > 0 else 0.0


def _padded(box: CropBox) -> CropBox:
    """The box grown by EDGE_PAD on every side, within the photo."""
    left, top = max(0.0, box.x - EDGE_PAD), max(0.0, box.y - EDGE_PAD)
    right, bottom = min(1.0, box.x + box.w + EDGE_PAD), min(1.0, box.y + box.h + EDGE_PAD)
    return CropBox(x=left, y=top, w=right - left, h=bottom - top)


def _around(boxes: list[CropBox]) -> CropBox:
    left, top = min(b.x for b in boxes), min(b.y for b in boxes)
    right, bottom = max(b.x + b.w for b in boxes), max(b.y + b.h for b in boxes)
    return CropBox(x=left, y=top, w=right - left, h=bottom - top)


def _touches_inner_cut(box: CropBox, window: tuple[float, float, float, float]) -> bool:
    """Whether the box reaches an edge of its window that is inside the photo (where the window was cut)."""
    x, y, w, h = window
    edges = []
    if x > 0:
        edges.append(abs(box.x - x))
    if x + w < 1:
        edges.append(abs(box.x + box.w - (x + w)))
    if y > 0:
        edges.append(abs(box.y - y))
    if y + h < 1:
        edges.append(abs(box.y + box.h - (y + h)))
    return any(distance <= CUT_MARGIN for distance in edges)
