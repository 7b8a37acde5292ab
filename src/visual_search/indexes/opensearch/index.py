"""The VectorIndex for large catalogues and AWS: one OpenSearch k-NN index (HNSW, cosine) per model.

Reads see every write that returned: writes use ``refresh="wait_for"`` by default, which blocks a bulk
request until the next periodic refresh (up to ``index.refresh_interval``, 1 s by default) instead of forcing
one per request; bulk loads that need no read-after-write can pass ``refresh=False`` and call ``refresh()``
once at the end. Serverless (aoss) supports neither, so it defaults to False there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, TypeVar

import numpy as np

from visual_search.core import centre as domain_centre
from visual_search.core.colour import colour_dimension_of
from visual_search.core.errors import InvalidRequestError
from visual_search.core.records import ImageRecord, IndexStats, RecordPage, SearchFilters, SearchHit, centre_summary
from visual_search.indexes.opensearch import centring, listing
from visual_search.indexes.opensearch import documents as docs
from visual_search.indexes.opensearch.backfill import backfill_settings, parallel_bulk
from visual_search.indexes.opensearch.connection import Auth, AwsSigV4Auth, parse_opensearch_url
from visual_search.indexes.opensearch.identity import open_or_create, read_index_meta
from visual_search.indexes.opensearch.session import DEFAULT_RETRY, OpenSearchSession, RetryPolicy

T = TypeVar("T")
Refresh = Literal["wait_for"] | bool
# How long a process searches with the centre it last read before reading `_meta` again: a refit elsewhere
# reaches every searcher within this time (writers re-read it after every write, see centring.py).
CENTRE_TTL_S = 10.0


class OpenSearchIndex:
    """A VectorIndex on an OpenSearch index named by the URL's path (see opensearch_connection for URL forms).

    Creates the index when missing; raises ModelMismatchError when it exists for another model_id or dimension.
    Raises BackendUnauthorizedError on 401/403 and BackendUnavailableError when the node stays unreachable or keeps
    answering 429/5xx after bounded retries. `engine` "lucene" works everywhere; "faiss" needs the k-NN native
    libraries (Amazon OpenSearch Service has them; the Maven-built local node does not, and dies using them).

    Query-domain centre (core/centre.py, centring.py): recorded in `_meta`; upsert, search, get_vector and
    iter_vectors take and give raw vectors, and the library projects them (on the query side too, so a SageMaker
    endpoint is never involved); `set_centre` re-projects the whole index by a bulk rewrite of stored raw vectors.
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
        given_space = model_id
        model_id = domain_centre.split_space_id(model_id)[0] if model_id is not None else None
        if new_index is not None:
            new_index["mappings"]["_meta"]["model_id"] = model_id
        self.model_id, self.dimension, engine_in_use = open_or_create(
            self._session, self.location.endpoint, self.index_name, model_id, dimension, new_index
        )
        self.engine = engine_in_use or self.engine
        self.colour_dimension = colour_dimension_of(self.model_id)
        self._centre_lock = threading.Lock()
        self._centre: domain_centre.Centre | None = None
        self._centre_read_at = -float("inf")
        domain_centre.checked_space(
            given_space, self.model_id, self.current_centre(), f"OpenSearch index {self.index_name!r}"
        )

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
        centre = self.current_centre()  # possibly a few seconds old: the check after the write catches a change
        for _ in range(5):
            self._session.bulk(
                self.index_name,
                self._index_actions(records, vectors, centre),
                refresh=self.refresh_policy,
                what=f"upsert {len(records)} records into {self.index_name!r}",
            )
            # A refit may have published another centre while these were projected: write them again with it.
            latest = self.current_centre(max_age_s=0.0)
            if _centre_id(latest) == _centre_id(centre):
                return
            centre = latest

    def _index_actions(
        self, records: Sequence[ImageRecord], vectors: np.ndarray, centre: domain_centre.Centre | None = None
    ) -> list[list[dict[str, Any]]]:
        if centre is None:
            return [
                [{"index": {"_index": self.index_name, "_id": r.key}}, docs.document(r, vector, self.model_id)]
                for r, vector in zip(records, vectors, strict=True)
            ]
        projected = domain_centre.project(vectors, centre, self.colour_dimension)
        return [
            [
                {"index": {"_index": self.index_name, "_id": r.key}},
                docs.document(r, raw, self.model_id, centring.centred_fields(raw, row, centre)),
            ]
            for r, raw, row in zip(records, vectors, projected, strict=True)
        ]

    def bulk_load(self, batches: Iterable[tuple[Sequence[ImageRecord], np.ndarray]], *, threads: int = 2) -> int:
        """Backfill: upsert many (records, vectors) batches with refresh off and no replicas, `threads` bulk
        requests in flight; the index settings are restored and the index refreshed before this returns (see
        backfill.py). Returns how many records were written. Not for Serverless, which has no such settings."""

        centre = self.current_centre(max_age_s=0.0)

        def actions():
            for records, vectors in batches:
                yield self._index_actions(
                    records,
                    docs.checked_vectors(vectors, self.dimension, rows=len(records), index_name=self.index_name),
                    centre,
                )

        def send(batch: list[list[dict[str, Any]]]) -> None:
            self._session.bulk(
                self.index_name, batch, refresh=False, what=f"load {len(batch)} records into {self.index_name!r}"
            )

        with backfill_settings(self._session, self.index_name):
            written = parallel_bulk(send, actions(), threads=threads)
        if _centre_id(self.current_centre(max_age_s=0.0)) != _centre_id(centre):
            self.set_centre(self._centre)  # a refit raced the load: re-project whatever it wrote with the old one
        return written

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
                params={"_source_excludes": ",".join(docs.VECTOR_FIELDS)},
            ),
            what="get records",
        )
        return {doc["_id"]: docs.record_from_source(doc["_source"]) for doc in answer["docs"] if doc.get("found")}

    def get_vector(self, key: str) -> np.ndarray | None:
        answer = self._call(
            lambda client: client.mget(
                index=self.index_name,
                body={"ids": [key]},
                params={"_source_includes": ",".join(docs.VECTOR_FIELDS)},
            ),
            what="get a vector",
        )
        found = [doc for doc in answer["docs"] if doc.get("found")]
        return centring.raw_vector_of(found[0]["_source"]) if found else None

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
        query_vector = domain_centre.project(query_vector, self.current_centre(), self.colour_dimension)
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
            centre=centre_summary(self.current_centre()),
        )

    # -- query-domain centre -----------------------------------------------------------------------

    def current_centre(self, max_age_s: float = CENTRE_TTL_S) -> domain_centre.Centre | None:
        """The centre recorded in `_meta`, read again when the copy held is older than `max_age_s`."""
        with self._centre_lock:
            if time.monotonic() - self._centre_read_at > max_age_s:
                meta, _ = read_index_meta(self._session, self.index_name)
                self._centre = centring.centre_of_meta(meta)
                self._centre_read_at = time.monotonic()
            return self._centre

    @property
    def centre(self) -> domain_centre.Centre | None:
        return self.current_centre(max_age_s=0.0)

    @property
    def space_id(self) -> str:
        return domain_centre.centred_space_id(self.model_id, self.centre)

    def set_centre(self, centre: domain_centre.Centre | None) -> int:
        """Search with `centre` from now on (None: without one): record it in `_meta`, then rewrite every
        document projected otherwise from its raw vector (see centring.py for why no writer is raced).
        Returns how many documents were rewritten."""
        if centre is not None:
            domain_centre.project(np.zeros((1, self.dimension), np.float32), centre, self.colour_dimension)
        meta, _ = read_index_meta(self._session, self.index_name)
        centring.publish_centre(self._session, self.index_name, meta or {}, centre)
        with self._centre_lock:
            self._centre, self._centre_read_at = centre, time.monotonic()
        return centring.rewrite_stale(
            self._session,
            self.index_name,
            centre,
            lambda rows: domain_centre.project(rows, centre, self.colour_dimension),
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


def _centre_id(centre: domain_centre.Centre | None) -> str:
    return centre.centre_id if centre is not None else ""
