"""The records of recent hits, remembered until the next commit.

Building a hit's record (one SQLite row, its attributes and product fields parsed from JSON) is a quarter of what
a small index spends on a query; shoppers' searches keep landing on the same popular items, and a commit (any
write) clears the cache, so a record is never older than the snapshot it is served from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from visual_search.core.records import ImageRecord

_SIZE = 4096


class RecordCache:
    def __init__(self) -> None:
        self._records: dict[int, ImageRecord] = {}
        self._generation = -1

    def records(
        self, seqs: Sequence[int], generation: int, read: Callable[[Sequence[int]], dict[int, ImageRecord]]
    ) -> dict[int, ImageRecord]:
        """seq -> record for the live ones among `seqs`, as `read(seqs)` returns them at this commit `generation`."""
        if generation != self._generation:
            self._records.clear()
            self._generation = generation
        found = {seq: self._records[seq] for seq in seqs if seq in self._records}
        missing = [seq for seq in seqs if seq not in found]
        if missing:
            read_now = read(missing)
            if len(self._records) + len(read_now) > _SIZE:
                self._records.clear()  # a cache, not a copy of the catalogue: start over rather than track age
            self._records.update(read_now)
            found.update(read_now)
        return found
