"""Re-indexes every image of the images bucket against the deployed stack: after a manifest change (labels,
product fields) or into a new index after a model change. The same labelling as the S3 events (object metadata,
then the manifest, then what the index holds) through the same event indexer; unchanged images are skipped."""

from __future__ import annotations

from collections.abc import Callable

from visual_search.core.errors import NotFoundError, VisualSearchError
from visual_search.services.indexing import IndexFailure, IndexReport
from visual_search.services.s3_event_indexer import S3EventIndexer

CHUNK = 64  # objects fetched (and held in memory) at a time


def reindex_bucket(
    indexer: S3EventIndexer, bucket: str, prefix: str = "", *, progress: Callable[[int], None] | None = None
) -> IndexReport:
    """Index every image under s3://bucket/prefix again. The records keep their S3 sequencer (the service merges
    attributes), so later events still order against them, and an event indexed meanwhile is not overwritten
    (the write's sequencer check)."""
    store = indexer.store_for_bucket(bucket)
    total = IndexReport()
    keys = list(store.list_keys(prefix))
    # Objects whose key no index may hold (core/keys.py) are reported, as the event path reports them.
    total.failed += [IndexFailure(uri, uri, reason) for uri, reason in store.skipped]
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        stored = indexer.index.get(chunk)
        items = []
        for key, result in zip(chunk, indexer.fetch([(bucket, key) for key in chunk])):
            if isinstance(result, NotFoundError):
                continue  # deleted since the listing: its own event removes it
            if isinstance(result, VisualSearchError):
                total.failed.append(IndexFailure(key, store.uri(key), result.message))
                continue
            items.append(indexer.catalogue_item(bucket, key, result, stored.get(key), {}))
        with indexer.index.snapshot(chunk, stored):
            report = indexer.indexing.index_items(items, progress=progress)
        total.indexed += report.indexed
        total.unchanged += report.unchanged
        total.failed += report.failed
        total.seconds += report.seconds
    return total
