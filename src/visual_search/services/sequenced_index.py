"""The index writes of the S3 event path: a record is written only when it is not older than what the index
holds, by S3 sequencer (kept in the record's attributes)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

from visual_search.core.object_events import is_later
from visual_search.core.ports import VectorIndex
from visual_search.core.records import ImageRecord

SEQUENCER_ATTRIBUTE = "s3_sequencer"


def record_sequencer(record: ImageRecord) -> str:
    return str(record.attributes.get(SEQUENCER_ATTRIBUTE, ""))


class SequencedIndex:
    """A VectorIndex decorator whose upsert drops records older than what the index already holds.

    The check runs just before each write, after the (slow) embedding, so a concurrent invocation that indexed
    a newer version meanwhile is not overwritten. A compare-and-set in the index would close the remaining
    window of one round trip; the port has none.
    """

    def __init__(self, inner: VectorIndex):
        self.inner = inner
        self._snapshot = threading.local()

    def upsert(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        # An equal sequencer is written (a re-index keeps each record's sequencer; a redelivered event was already
        # dropped as a duplicate when its batch was planned); only an older one loses to the index.
        stored = self.inner.get([record.key for record in records])
        keep = [
            row
            for row, record in enumerate(records)
            if record.key not in stored
            or record_sequencer(record) == record_sequencer(stored[record.key])
            or is_later(record_sequencer(record), record_sequencer(stored[record.key]))
        ]
        if keep:
            self.inner.upsert([records[row] for row in keep], np.asarray(vectors)[keep])

    # The rest of the port passes through unchanged, method by method, so the decorator says what it is.
    @property
    def writable(self) -> bool:
        return self.inner.writable

    def delete(self, keys: Sequence[str]) -> int:
        return self.inner.delete(keys)

    def get(self, keys: Sequence[str]) -> dict[str, ImageRecord]:
        snapshot = getattr(self._snapshot, "value", None)
        if snapshot is not None and set(keys) <= snapshot[0]:
            return {key: snapshot[1][key] for key in keys if key in snapshot[1]}
        return self.inner.get(keys)

    @contextmanager
    def snapshot(self, keys: Sequence[str], records: dict[str, ImageRecord]):
        """Within the block (on this thread), get() of `keys` answers from `records`, what the index held for
        them when this batch was planned, instead of asking again; upsert's check still asks the index."""
        self._snapshot.value = (set(keys), records)
        try:
            yield
        finally:
            self._snapshot.value = None

    def get_vector(self, key: str) -> np.ndarray | None:
        return self.inner.get_vector(key)

    def search(self, vector, k, filters=None, exclude_keys=()):
        return self.inner.search(vector, k, filters, exclude_keys)

    def count(self) -> int:
        return self.inner.count()

    def stats(self):
        return self.inner.stats()

    def list_records(self, offset: int = 0, limit: int = 50, filters=None):
        return self.inner.list_records(offset, limit, filters)

    def iter_vectors(self, batch_size: int = 1024):
        return self.inner.iter_vectors(batch_size)

    def close(self) -> None:
        self.inner.close()
