"""The near-duplicate report: groups of catalogue images that are the same photo resized, recompressed, slightly
cropped or mirrored.

Each image asks the index for its few nearest neighbours (the index's own k-NN: HNSW on large embedded indexes,
k-NN on OpenSearch), so the pass costs n searches rather than n² comparisons. Pairs at or above the threshold are
joined into groups with union-find, so a chain of near-copies (A~B, B~C) forms one group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from visual_search.core.errors import InvalidRequestError
from visual_search.core.ports import VectorIndex
from visual_search.core.records import ImageRecord
from visual_search.core.text_rules import ascii_number

# Chosen on made-up duplicates of the clothing photos (docs/BENCHMARKS.md, "Near-duplicate report").
DEFAULT_THRESHOLD = 0.95
# Neighbours asked per image: a group larger than this is still found whole, through its members' links.
DEFAULT_NEIGHBOURS = 10


@dataclass(frozen=True)
class DuplicateMember:
    record: ImageRecord
    score: float  # the best similarity linking this member to another member of its group


@dataclass(frozen=True)
class DuplicateGroup:
    members: list[DuplicateMember]  # by descending score, then key

    @property
    def keys(self) -> list[str]:
        return [member.record.key for member in self.members]


@dataclass(frozen=True)
class DuplicateReport:
    groups: list[DuplicateGroup]  # largest first
    threshold: float
    images_scanned: int

    def as_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "images_scanned": self.images_scanned,
            "groups": [
                {
                    "keys": group.keys,
                    "members": [
                        {"key": m.record.key, "label": m.record.label, "score": round(m.score, 6)}
                        for m in group.members
                    ],
                }
                for group in self.groups
            ],
        }


def find_duplicates(
    index: VectorIndex,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    neighbours: int = DEFAULT_NEIGHBOURS,
    progress: Callable[[int], None] | None = None,
) -> DuplicateReport:
    """Groups of images whose cosine similarity to another member is at least `threshold` (0.5 to 1)."""
    threshold = checked_threshold(threshold)
    links = _Links()
    scanned = 0
    for keys, vectors in index.iter_vectors():
        for key, vector in zip(keys, vectors):
            for hit in index.search(vector, neighbours + 1, exclude_keys=(key,)):
                if hit.score < threshold:
                    break  # hits come by descending score
                links.join(key, hit.record.key, hit.score)
        scanned += len(keys)
        if progress:
            progress(len(keys))
    return DuplicateReport(_groups(index, links), threshold, scanned)


def checked_threshold(value) -> float:
    """`value` as a threshold from 0.5 to 1; InvalidRequestError otherwise. Below 0.5 images are merely related,
    and one group could swallow much of the catalogue."""
    try:
        # A query string or a CLI argument: ASCII digits only (float() would read "٠.٩", "０.９" or "0_9").
        threshold = ascii_number(value, "the threshold") if isinstance(value, str) else float(value)
    except (TypeError, ValueError, InvalidRequestError):
        threshold = float("nan")
    if not 0.5 <= threshold <= 1.0:
        raise InvalidRequestError(f"the threshold must be a number from 0.5 to 1, not {str(value)[:20]!r}")
    return threshold


class _Links:
    """Union-find over keys, remembering each key's best link score."""

    def __init__(self):
        self.parent: dict[str, str] = {}
        self.best: dict[str, float] = {}

    def root(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]  # path halving keeps the trees flat
            key = self.parent[key]
        return key

    def join(self, a: str, b: str, score: float) -> None:
        for key in (a, b):
            self.best[key] = max(self.best.get(key, 0.0), score)
        root_a, root_b = self.root(a), self.root(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def groups(self) -> list[list[str]]:
        by_root: dict[str, list[str]] = {}
        for key in self.parent:
            by_root.setdefault(self.root(key), []).append(key)
        return list(by_root.values())


def _groups(index: VectorIndex, links: _Links) -> list[DuplicateGroup]:
    groups = []
    for keys in links.groups():
        records = index.get(keys)  # a key deleted during the pass drops out of its group
        members = sorted(
            (DuplicateMember(records[key], links.best[key]) for key in keys if key in records),
            key=lambda member: (-member.score, member.record.key),
        )
        if len(members) > 1:
            groups.append(DuplicateGroup(members))
    return sorted(groups, key=lambda group: (-len(group.members), group.keys[0]))
