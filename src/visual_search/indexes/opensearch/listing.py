"""Walking a whole OpenSearch index in key order: pages of records for the catalogue, and batches of vectors for
the duplicate report. Both go past the 10,000-hit window that from/size allows, by `search_after` on the key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from visual_search.core.records import RecordPage, SearchFilters, checked_page
from visual_search.indexes.opensearch import documents as docs
from visual_search.indexes.opensearch.centring import raw_vector_of

Search = Callable[[dict[str, Any], str], dict[str, Any]]  # (query body, what it is for) -> the search answer


def list_records(search: Search, offset: int, limit: int, filters: SearchFilters | None) -> RecordPage:
    """A page ordered by key. Past the 10,000-hit window the page starts after the key at `offset`, found by
    walking the keys before it (keys only, 10,000 a request)."""
    offset, limit = checked_page(offset, limit)
    if offset + limit <= docs.MAX_K:
        body = docs.listing_query(filters, offset, limit)
    else:
        after, skipped = None, 0
        while skipped < offset:
            size = min(offset - skipped, docs.MAX_K)
            hits = search(docs.key_scan_query(filters, after, size), "skip keys")
            keys = [hit["_source"]["key"] for hit in hits["hits"]["hits"]]
            if not keys:
                break
            after, skipped = keys[-1], skipped + len(keys)
        body = docs.listing_query(filters, 0, limit, after_key=after)
        if skipped < offset:  # past the end: no records, but the total still counts the matches
            body["size"] = 0
    answer = search(body, "list records")
    records = [docs.record_from_source(hit["_source"]) for hit in answer["hits"]["hits"]]
    return RecordPage(records, int(answer["hits"]["total"]["value"]))


def iter_vectors(search: Search, batch_size: int) -> Iterator[tuple[list[str], np.ndarray]]:
    after: str | None = None
    while True:
        hits = search(docs.vector_scan_query(after, min(batch_size, docs.MAX_K)), "scan vectors")["hits"]["hits"]
        if not hits:
            return
        after = hits[-1]["_source"]["key"]
        # Raw vectors (the embedder's), as get_vector gives them: with a centre, the k-NN field holds projected ones.
        vectors = np.stack([raw_vector_of(hit["_source"]) for hit in hits]).astype(np.float32)
        yield [hit["_source"]["key"] for hit in hits], vectors
