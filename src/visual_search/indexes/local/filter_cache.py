"""The seqs a filter accepts, remembered until the next commit.

A broad filter (a tenth of a million-image catalogue) matches 100k rows; reading them from SQLite takes longer
than the search itself, and shoppers repeat the same few category filters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np

from visual_search.core.records import SearchFilters

_SIZE = 32


class Selection:
    """The ascending seqs a filter accepts, and the same as a bitmap (bit `seq` set) for faiss's IDSelectorBitmap."""

    def __init__(self, seqs: np.ndarray):
        self.seqs = seqs

    @cached_property
    def bitmap(self) -> np.ndarray:
        members = np.zeros(int(self.seqs[-1]) + 1 if len(self.seqs) else 1, dtype=bool)
        members[self.seqs] = True
        return np.packbits(members, bitorder="little")


class FilterCache:
    def __init__(self) -> None:
        self._found: dict[tuple, Selection] = {}
        self._generation = -1

    def select(self, filters: SearchFilters, generation: int, read: Callable[[SearchFilters], np.ndarray]) -> Selection:
        """The seqs `read(filters)` returned at this commit `generation` (read again after any commit)."""
        if generation != self._generation:
            self._found.clear()
            self._generation = generation
        key = (filters.labels, tuple(sorted((name, frozenset(values)) for name, values in filters.attributes.items())))
        found = self._found.get(key)
        if found is None:
            found = Selection(read(filters))
            if len(self._found) >= _SIZE:
                self._found.pop(next(iter(self._found)))  # the oldest entry
            self._found[key] = found
        return found
