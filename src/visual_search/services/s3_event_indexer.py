"""Applies S3 object events to the index so that duplicate and out-of-order delivery converge.

The index holds one record per object key (the document id), with the S3 `sequencer` of the event that last
wrote it in its attributes. An event no later than that is stale and skipped. An event is applied against the
bucket's *current* state: a put whose object is gone deletes, a delete whose object exists again keeps it (the
newer put's own event indexes it), so the last event processed always leaves the index matching the bucket.
Deletions leave no record behind to remember their sequencer; checking the bucket is what makes them safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from visual_search.core.errors import NotFoundError, VisualSearchError
from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.core.keys import key_problem, printable
from visual_search.core.object_events import THUMBNAILS_ATTRIBUTE, EventOutcome, ObjectEvent, is_later, is_stack_object
from visual_search.core.ports import ImageStore, StoredObject, Thumbnails
from visual_search.core.records import ImageRecord
from visual_search.services.catalogue_fields import CatalogueFields, CatalogueManifest, fields_from_metadata
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.services.sequenced_index import SEQUENCER_ATTRIBUTE, SequencedIndex
from visual_search.services.sequenced_index import record_sequencer as _sequencer

logger = logging.getLogger(__name__)


class S3EventIndexer:
    """Turns ObjectEvents into index writes: embedding through the IndexingService, reads and deletions on
    `index`, the SequencedIndex that the service writes through too.

    Per batch, each key's record is read from the index once to plan (stale events, what a re-upload keeps), each
    created object is fetched once (bytes and user metadata in one GET), a removed one is checked with a HEAD,
    and the write compares sequencers once more just before it lands (the compare of a compare-and-set).
    `store_for_bucket(name)` gives the ImageStore of a bucket; `manifest_for_bucket(name)` its catalogue
    manifest, or None.
    """

    def __init__(
        self,
        indexing: IndexingService,
        index: SequencedIndex,
        store_for_bucket: Callable[[str], ImageStore],
        manifest_for_bucket: Callable[[str], CatalogueManifest | None] = lambda _bucket: None,
        *,
        readers: int = 4,
        thumbnails: Thumbnails | None = None,
    ):
        self.indexing = indexing
        self.index = index
        self.store_for_bucket = store_for_bucket
        self.manifest_for_bucket = manifest_for_bucket
        self.readers = readers
        self.thumbnails = thumbnails  # written before an image's record, removed after it (stores/s3_thumbnails.py)

    def apply(self, events: Sequence[ObjectEvent]) -> list[EventOutcome]:
        outcomes: list[EventOutcome] = []
        latest: dict[tuple[str, str], ObjectEvent] = {}
        for event in events:
            if event.key.endswith("/") or not event.key.lower().endswith(IMAGE_SUFFIXES):
                outcomes.append(EventOutcome(event, "ignored", "not an image file name"))
                continue
            if is_stack_object(event.key):  # reaches the queue when ImagesPrefix is empty (the whole bucket)
                outcomes.append(EventOutcome(event, "ignored", "a thumbnail or shared upload, not a catalogue image"))
                continue
            problem = key_problem(event.key)  # the key check of every entry (core/keys.py)
            if problem:
                # Redelivery cannot fix a name: reported and skipped, so the message is not retried for ever.
                outcomes.append(
                    EventOutcome(event, "skipped", f"the object '{printable(event.key)}' was not indexed: {problem}")
                )
                continue
            seen = latest.get((event.bucket, event.key))
            if seen is None or is_later(event.sequencer, seen.sequencer):
                if seen is not None:
                    outcomes.append(EventOutcome(seen, "stale", "a later event for this key is in the batch"))
                latest[(event.bucket, event.key)] = event
            else:
                same = seen.sequencer == event.sequencer and seen.created == event.created
                outcomes.append(EventOutcome(event, "duplicate" if same else "stale"))
        stored = self.index.get([key for _, key in latest])
        fresh = []
        for event in latest.values():
            record = stored.get(event.key)
            if record is not None and not is_later(event.sequencer, _sequencer(record)):
                outcomes.append(EventOutcome(event, "stale", "the index already holds this or a later event"))
            else:
                fresh.append(event)
        outcomes += self._apply_creations([e for e in fresh if e.created], stored)
        outcomes += self._apply_removals([e for e in fresh if not e.created])
        return outcomes

    def _apply_creations(self, events: list[ObjectEvent], stored: dict[str, ImageRecord]) -> list[EventOutcome]:
        if not events:
            return []
        fetched = self.fetch([(event.bucket, event.key) for event in events])
        thumbnailed = self._write_thumbnails(events, fetched)
        items, settled, gone = [], {}, []
        for event, result in zip(events, fetched):
            if isinstance(result, NotFoundError):
                gone.append(event)  # deleted again since this event: the bucket says absent, so the index must too
            elif isinstance(result, VisualSearchError):
                settled[event.key] = EventOutcome(event, "failed", result.message)
            else:
                extra = {SEQUENCER_ATTRIBUTE: event.sequencer}
                if self.thumbnails is not None:  # "0" too: a re-upload whose thumbnails failed must not keep old ones
                    extra[THUMBNAILS_ATTRIBUTE] = "1" if thumbnailed.get(event.key) else "0"
                items.append(self.catalogue_item(event.bucket, event.key, result, stored.get(event.key), extra))
        with self.index.snapshot([event.key for event in events], stored):
            report = self.indexing.index_items(items)
        failures = {failure.key: failure.reason for failure in report.failed}
        outcomes = [
            settled.get(event.key)
            or (
                EventOutcome(event, "failed", failures[event.key])
                if event.key in failures
                else EventOutcome(event, "indexed")
            )
            for event in events
            if event not in gone
        ]
        return outcomes + self._remove(gone, "the object no longer exists")

    def _write_thumbnails(
        self, events: list[ObjectEvent], fetched: list[StoredObject | VisualSearchError]
    ) -> dict[str, bool]:
        """{key: whether all its thumbnails were written} for each fetched image, in parallel."""
        thumbnails = self.thumbnails
        if thumbnails is None:
            return {}
        jobs = [(e.bucket, e.key, r.data) for e, r in zip(events, fetched) if isinstance(r, StoredObject)]
        if not jobs:
            return {}
        with ThreadPoolExecutor(max(1, min(self.readers, len(jobs))), thread_name_prefix="thumbnails") as pool:
            written = list(pool.map(lambda job: thumbnails.write(*job), jobs))
        return {key: ok for (_bucket, key, _data), ok in zip(jobs, written)}

    def fetch(self, objects: Sequence[tuple[str, str]]) -> list[StoredObject | VisualSearchError]:
        """Each (bucket, key)'s object (one GET: bytes and metadata), or the error that prevented it, in order."""

        def read(bucket_and_key: tuple[str, str]) -> StoredObject | VisualSearchError:
            try:
                return self.store_for_bucket(bucket_and_key[0]).read_object(bucket_and_key[1])
            except VisualSearchError as exc:
                return exc

        with ThreadPoolExecutor(max(1, min(self.readers, len(objects))), thread_name_prefix="s3-read") as pool:
            return list(pool.map(read, objects))

    def catalogue_item(
        self, bucket: str, key: str, obj: StoredObject, previous: ImageRecord | None, extra_attributes: dict[str, str]
    ) -> IndexItem:
        """The IndexItem of a fetched object, labelled from its metadata, then the manifest, then `previous`."""
        store = self.store_for_bucket(bucket)
        manifest = self.manifest_for_bucket(bucket)
        listed = manifest.fields_for(key) if manifest else CatalogueFields()
        try:
            own = fields_from_metadata(obj.metadata, where=store.uri(key))
        except VisualSearchError as exc:
            logger.error("ignoring the metadata of %s: %s", store.uri(key), exc.message)
            own = CatalogueFields()
        fields = own.under(listed)
        # A label or product said nowhere is kept from the index (set by a backfill); attributes are merged by
        # the indexing service, which keeps those the item does not set.
        return IndexItem(
            key,
            store.uri(key),
            partial(bytes, obj.data),  # the bytes already fetched, handed to the indexing service as a reader
            fields.label or (previous.label if previous else None),
            {**fields.attributes, **extra_attributes},
            product=fields.product,
        )

    def _apply_removals(self, events: list[ObjectEvent]) -> list[EventOutcome]:
        outcomes, absent = [], []
        for event in events:
            try:
                exists = self.store_for_bucket(event.bucket).exists(event.key)
            except VisualSearchError as exc:
                outcomes.append(EventOutcome(event, "failed", exc.message))
                continue
            if exists:
                outcomes.append(EventOutcome(event, "kept", "the object exists again; its own event indexes it"))
            else:
                absent.append(event)
        return outcomes + self._remove(absent, "")

    def _remove(self, events: list[ObjectEvent], reason: str) -> list[EventOutcome]:
        if not events:
            return []
        try:
            # Re-checked just before deleting: a newer put indexed meanwhile must not be removed.
            current = self.index.get([event.key for event in events])
            outcomes, doomed = [], []
            for event in events:
                record = current.get(event.key)
                if record is not None and not is_later(event.sequencer, _sequencer(record)):
                    outcomes.append(EventOutcome(event, "stale", "a later event was indexed meanwhile"))
                else:
                    doomed.append(event)
            if doomed:
                self.index.delete([event.key for event in doomed])
        except VisualSearchError as exc:
            return [EventOutcome(event, "failed", exc.message) for event in events]
        if self.thumbnails is not None:
            for bucket in {event.bucket for event in doomed}:
                self.thumbnails.remove(bucket, [event.key for event in doomed if event.bucket == bucket])
        return outcomes + [EventOutcome(event, "deleted", reason) for event in doomed]
