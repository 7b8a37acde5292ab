"""Applies S3 object events to the index so that duplicate and out-of-order delivery converge.

The index holds one record per object key (the document id), with the S3 `sequencer` of the event that last
wrote it in its attributes. An event no later than that is stale and skipped. An event is applied against the
bucket's *current* state: a put whose object is gone deletes, a delete whose object exists again keeps it (the
newer put's own event indexes it), so the last event processed always leaves the index matching the bucket.
Deletions leave no record behind to remember their sequencer; checking the bucket is what makes them safe.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from visual_search.core.errors import NotFoundError, VisualSearchError
from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.core.ports import ImageStore, VectorIndex
from visual_search.core.records import ImageRecord
from visual_search.aws.s3_events import ObjectEvent, is_later

logger = logging.getLogger(__name__)

SEQUENCER_ATTRIBUTE = "s3_sequencer"


@dataclass(frozen=True)
class EventOutcome:
    """What became of one event: indexed, deleted, kept (object exists again), stale, duplicate, ignored or
    failed (with a reason). Only "failed" asks for redelivery."""

    event: ObjectEvent
    status: str
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


class SequencedIndex:
    """A VectorIndex decorator whose upsert drops records older than what the index already holds.

    The check runs just before each write, after the (slow) embedding, so a concurrent invocation that indexed
    a newer version meanwhile is not overwritten. A compare-and-set in the index would close the remaining
    window of one round trip; the port has none.
    """

    def __init__(self, inner: VectorIndex):
        self.inner = inner

    def upsert(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        stored = self.inner.get([record.key for record in records])
        keep = [
            row for row, record in enumerate(records)
            if record.key not in stored or is_later(_sequencer(record), _sequencer(stored[record.key]))
        ]
        if keep:
            self.inner.upsert([records[row] for row in keep], np.asarray(vectors)[keep])

    # The rest of the port passes through unchanged, method by method, so the decorator says what it is.
    def delete(self, keys: Sequence[str]) -> int:
        return self.inner.delete(keys)

    def get(self, keys: Sequence[str]) -> dict[str, ImageRecord]:
        return self.inner.get(keys)

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


class S3EventIndexer:
    """Turns ObjectEvents into index writes through the IndexingService (whose index should be a SequencedIndex).

    `store_for_bucket(name)` gives the ImageStore that reads that bucket's objects.
    """

    def __init__(self, indexing: IndexingService, store_for_bucket: Callable[[str], ImageStore]):
        self.indexing = indexing
        self.store_for_bucket = store_for_bucket

    def apply(self, events: Sequence[ObjectEvent]) -> list[EventOutcome]:
        outcomes: list[EventOutcome] = []
        latest: dict[tuple[str, str], ObjectEvent] = {}
        for event in events:
            if event.key.endswith("/") or not event.key.lower().endswith(IMAGE_SUFFIXES):
                outcomes.append(EventOutcome(event, "ignored", "not an image file name"))
                continue
            seen = latest.get((event.bucket, event.key))
            if seen is None or is_later(event.sequencer, seen.sequencer):
                if seen is not None:
                    outcomes.append(EventOutcome(seen, "stale", "a later event for this key is in the batch"))
                latest[(event.bucket, event.key)] = event
            else:
                same = seen.sequencer == event.sequencer and seen.created == event.created
                outcomes.append(EventOutcome(event, "duplicate" if same else "stale"))
        stored = self.indexing.index.get([key for _, key in latest])
        fresh = []
        for event in latest.values():
            record = stored.get(event.key)
            if record is not None and not is_later(event.sequencer, _sequencer(record)):
                outcomes.append(EventOutcome(event, "stale", "the index already holds this or a later event"))
            else:
                fresh.append(event)
        outcomes += self._apply_creations([e for e in fresh if e.created], stored)
        outcomes += [self._apply_removal(e) for e in fresh if not e.created]
        return outcomes

    def _apply_creations(self, events: list[ObjectEvent], stored: dict[str, ImageRecord]) -> list[EventOutcome]:
        if not events:
            return []
        missing: set[str] = set()
        missing_lock = threading.Lock()

        def reader(store: ImageStore, key: str) -> Callable[[], bytes]:
            def read() -> bytes:
                try:
                    return store.read(key)
                except NotFoundError:
                    with missing_lock:
                        missing.add(key)
                    raise
            return read

        items = []
        for event in events:
            store = self.store_for_bucket(event.bucket)
            previous = stored.get(event.key)
            # Catalogue metadata set by a backfill (label, attributes) survives a re-upload.
            attributes = {**(previous.attributes if previous else {}), SEQUENCER_ATTRIBUTE: event.sequencer}
            items.append(IndexItem(event.key, store.uri(event.key), reader(store, event.key),
                                   previous.label if previous else None, attributes))
        report = self.indexing.index_items(items)
        failures = {failure.key: failure.reason for failure in report.failed}
        outcomes = []
        for event in events:
            if event.key in missing:
                # Deleted again since this event: the bucket says absent, so the index must too.
                outcomes.append(self._remove(event, "the object no longer exists"))
            elif event.key in failures:
                outcomes.append(EventOutcome(event, "failed", failures[event.key]))
            else:
                outcomes.append(EventOutcome(event, "indexed"))
        return outcomes

    def _apply_removal(self, event: ObjectEvent) -> EventOutcome:
        try:
            self.store_for_bucket(event.bucket).read(event.key)
        except NotFoundError:
            return self._remove(event, "")
        except VisualSearchError as exc:
            return EventOutcome(event, "failed", exc.message)
        return EventOutcome(event, "kept", "the object exists again; its own event indexes it")

    def _remove(self, event: ObjectEvent, reason: str) -> EventOutcome:
        try:
            record = self.indexing.index.get([event.key]).get(event.key)
            # Re-checked just before deleting: a newer put indexed meanwhile must not be removed.
            if record is not None and not is_later(event.sequencer, _sequencer(record)):
                return EventOutcome(event, "stale", "a later event was indexed meanwhile")
            self.indexing.remove([event.key])
        except VisualSearchError as exc:
            return EventOutcome(event, "failed", exc.message)
        return EventOutcome(event, "deleted", reason)


def _sequencer(record: ImageRecord) -> str:
    return str(record.attributes.get(SEQUENCER_ATTRIBUTE, ""))
