"""The VectorIndex for large catalogues and AWS: one OpenSearch k-NN index (HNSW, cosine) per model.

Reads see every write that returned: writes use ``refresh="wait_for"`` by default, which blocks a bulk
request until the next periodic refresh (up to ``index.refresh_interval``, 1 s by default) instead of forcing
one per request; bulk loads that need no read-after-write can pass ``refresh=False`` and call ``refresh()``
once at the end. Serverless (aoss) supports neither, so it defaults to False there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, TypeVar

import numpy as np

from visual_search.core.errors import InvalidRequestError
from visual_search.core.records import ImageRecord, IndexStats, RecordPage, SearchFilters, SearchHit
from visual_search.indexes.opensearch import documents as docs
from visual_search.indexes.opensearch import listing
from visual_search.indexes.opensearch.backfill import backfill_settings, parallel_bulk
from visual_search.indexes.opensearch.connection import Auth, AwsSigV4Auth, parse_opensearch_url
from visual_search.indexes.opensearch.identity import open_or_create
from visual_search.indexes.opensearch.session import DEFAULT_RETRY, OpenSearchSession, RetryPolicy

T = TypeVar("T")
Refresh = Literal["wait_for"] | bool


class OpenSearchIndex:
    """A VectorIndex on an OpenSearch index named by the URL's path (see opensearch_connection for URL forms).

    Creates the index when missing; raises ModelMismatchError when it exists for another model_id or dimension.
    Raises BackendUnauthorizedError on 401/403 and BackendUnavailableError when the node stays unreachable or keeps
    answering 429/5xx after bounded retries. `engine` "lucene" works everywhere; "faiss" needs the k-NN native
    libraries (Amazon OpenSearch Service has them; the Maven-built local node does not, and dies using them).
    """

    writable = True  # OpenSearch takes writes from any number of clients: no writer lock to hold

    def __init__(
        self,
        url: str,
        *,
        model_id: str | None,
        dimension: int | None,
        engine: str = "lucene",
        m: int = 16,
        ef_construction: int = 128,
        ef_search: int = 100,
        shards: int = 1,
        replicas: int | None = None,
        mode: str | None = None,
        compression_level: str | None = None,
        encoder: str | None = None,
        auth: Auth = None,
        refresh: Refresh | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        verify_certs: bool = True,
        create: bool = True,
    ):
        """model_id/dimension None: open an existing index for whatever model made it (NotFoundError if none).

        m, ef_construction, engine, shards, replicas and the memory-saving mode, compression_level and encoder
        (see documents.MODES, COMPRESSION_LEVELS, ENCODERS) apply only when this call creates the index; an
        existing index keeps its own (its engine is read back from the mapping).
        """
        self._product_mapped = False
        if engine not in docs.ENGINES:
            raise InvalidRequestError(f"engine must be one of {docs.ENGINES}, not {engine!r}")
        if problem := docs.storage_problem(engine, mode, compression_level, encoder):
            raise InvalidRequestError(problem)
        if dimension is not None and dimension < 1:
            raise InvalidRequestError(f"dimension must be positive, not {dimension}")
        self.location = parse_opensearch_url(url, auth)
        self.index_name = self.location.index_name
        self.engine = engine
        self.ef_search = ef_search
        serverless = isinstance(self.location.auth, AwsSigV4Auth) and self.location.auth.service == "aoss"
        if refresh is None:
            refresh = False if serverless else "wait_for"
        self.refresh_policy: Refresh = refresh
        self._session = OpenSearchSession(self.location, timeout_s=timeout_s, verify_certs=verify_certs, retry=retry)
        new_index = None
        if create and model_id is not None and dimension is not None:
            new_index = docs.index_body(
                model_id=model_id,
                dimension=dimension,
                engine=engine,
                m=m,
                ef_construction=ef_construction,
                ef_search=ef_search,
                shards=shards,
                replicas=replicas,
                mode=mode,
                compression_level=compression_level,
                encoder=encoder,
            )
        self.model_id, self.dimension, engine_in_use = open_or_create(
            self._session, self.location.endpoint, self.index_name, model_id, dimension, new_index
        )
        self.engine = engine_in_use or self.engine

    @classmethod
    def open_existing(cls, url: str, **options: Any) -> OpenSearchIndex:
        """Open an index created earlier, reading model_id, dimension and engine from its mapping.

        For readers that do not load the model (stats, get, search by a stored key's vector).
        Raises NotFoundError when the index is missing.
        """
        return cls(url, model_id=None, dimension=None, create=False, **options)

    # -- VectorIndex -------------------------------------------------------------------------------

    def upsert(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        vectors = docs.checked_vectors(vectors, self.dimension, rows=len(records), index_name=self.index_name)
        if not records:
            return
        if not self._product_mapped and any(not record.product.is_empty for record in records):
            # An index created before product data has a strict mapping without `product`: adding a field is
            # allowed on a live index and idempotent, so it is done once, on the first write that needs it.
            self._call(
                lambda client: client.indices.put_mapping(
                    index=self.index_name, body={"properties": docs.PRODUCT_MAPPING}
                ),
                what="add the product field to the mapping",
            )
            self._product_mapped = True
        self._session.bulk(
            self.index_name,
            self._index_actions(records, vectors),
            refresh=self.refresh_policy,
            what=f"upsert {len(records)} records into {self.index_name!r}",
        )

    def _index_actions(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> list[list[dict[str, Any]]]:
        return [
            [{"index": {"_index": self.index_name, "_id": record.key}}, docs.document(record, vector, self.model_id)]
            for record, vector in zip(records, vectors, strict=True)
        ]

    def bulk_load(self, batches: Iterable[tuple[Sequence[ImageRecord], np.ndarray]], *, threads: int = 2) -> int:
        """Backfill: upsert many (records, vectors) batches with refresh off and no replicas, `threads` bulk
        requests in flight; the index settings are restored and the index refreshed before this returns (see
        backfill.py). Returns how many records were written. Not for Serverless, which has no such settings."""

        def actions():
            for records, vectors in batches:
                yield self._index_actions(
                    records,
                    docs.checked_vectors(vectors, self.dimension, rows=len(records), index_name=self.index_name),
                )

        def send(batch: list[list[dict[str, Any]]]) -> None:
            self._session.bulk(
                self.index_name, batch, refresh=False, what=f"load {len(batch)} records into {self.index_name!r}"
            )

        with backfill_settings(self._session, self.index_name):
            return parallel_bulk(send, actions(), threads=threads)

    def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        actions = [[{"delete": {"_index": self.index_name, "_id": key}}] for key in dict.fromkeys(keys)]
        items = self._session.bulk(
            self.index_name,
            actions,
            refresh=self.refresh_policy,
            what=f"delete {len(actions)} keys from {self.index_name!r}",
        )
        return sum(1 for item in items if item["delete"].get("result") == "deleted")

    def get(self, keys: Sequence[str]) -> dict[str, ImageRecord]:
        if not keys:
            return {}
        answer = self._call(
            lambda client: client.mget(
                index=self.index_name,
                body={"ids": list(dict.fromkeys(keys))},
                params={"_source_excludes": docs.VECTOR_FIELD},
            ),
            what="get records",
        )
        return {doc["_id"]: docs.record_from_source(doc["_source"]) for doc in answer["docs"] if doc.get("found")}

    def get_vector(self, key: str) -> np.ndarray | None:
        answer = self._call(
            lambda client: client.mget(
                index=self.index_name, body={"ids": [key]}, params={"_source_includes": docs.VECTOR_FIELD}
            ),
            what="get a vector",
        )
        found = [doc for doc in answer["docs"] if doc.get("found")]
        return np.asarray(found[0]["_source"][docs.VECTOR_FIELD], dtype=np.float32) if found else None

    def search(
        self,
        vector: np.ndarray,
        k: int,
        filters: SearchFilters | None = None,
        exclude_keys: Sequence[str] = (),
    ) -> list[SearchHit]:
        """At most k hits (capped at 10,000, OpenSearch's limit) by descending cosine similarity."""
        query_vector = docs.checked_vectors(
            np.asarray(vector).reshape(1, -1), self.dimension, rows=1, index_name=self.index_name
        )[0]
        if k < 1:
            return []
        body = docs.knn_query(
            query_vector,
            min(k, docs.MAX_K),
            engine=self.engine,
            ef_search=self.ef_search,
            filters=filters,
            exclude_keys=exclude_keys,
        )
        answer = self._call(lambda client: client.search(index=self.index_name, body=body), what="search")
        hits = [
            SearchHit(docs.record_from_source(hit["_source"]), docs.cosine_from_score(hit["_score"]))
            for hit in answer["hits"]["hits"]
        ]
        return sorted(hits, key=lambda hit: hit.score, reverse=True)

    def count(self) -> int:
        return int(self._call(lambda client: client.count(index=self.index_name), what="count")["count"])

    def list_records(self, offset: int = 0, limit: int = 50, filters: SearchFilters | None = None) -> RecordPage:
        """A page ordered by key (see listing.list_records for pages past the 10,000-hit window)."""
        return listing.list_records(self._search, offset, limit, filters)

    def iter_vectors(self, batch_size: int = 1024) -> Iterator[tuple[list[str], np.ndarray]]:
        return listing.iter_vectors(self._search, batch_size)

    def stats(self) -> IndexStats:
        answer = self._call(
            lambda client: client.search(index=self.index_name, body=docs.labels_aggregation()), what="read stats"
        )
        labels = {bucket["key"]: bucket["doc_count"] for bucket in answer["aggregations"]["labels"]["buckets"]}
        return IndexStats(
            count=int(answer["hits"]["total"]["value"]),
            dimension=self.dimension,
            model_id=self.model_id,
            labels=labels,
            backend="opensearch",
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Make every write so far visible to search (for bulk loads written with refresh=False)."""
        self._call(lambda client: client.indices.refresh(index=self.index_name), what="refresh")

    def drop(self) -> None:
        """Delete the whole index; a missing index is fine. Works after close() (it reconnects)."""
        self._call(
            lambda client: client.indices.delete(index=self.index_name, params={"ignore_unavailable": "true"}),
            what="delete the index",
        )

    def close(self) -> None:
        """Release pooled connections. The object stays usable: the next call reconnects."""
        self._session.close()

    def __enter__(self) -> OpenSearchIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"{self.location.endpoint}/{self.index_name}"
        return f"OpenSearchIndex({where}, model_id={self.model_id!r}, dimension={self.dimension})"

    # -- internals ---------------------------------------------------------------------------------

    def _call(self, operation: Callable[[Any], T], *, what: str) -> T:
        return self._session.call(operation, what=f"{what} in {self.index_name!r}")

    def _search(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        return self._call(lambda client: client.search(index=self.index_name, body=body), what=what)
