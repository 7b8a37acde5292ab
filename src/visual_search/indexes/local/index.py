"""The embedded VectorIndex: a directory holding SQLite (records, vectors) and an optional HNSW sidecar."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from visual_search.core import centre as domain_centre
from visual_search.core.colour import colour_dimension_of
from visual_search.core.errors import IndexClosedError, IndexCorruptError, NotFoundError
from visual_search.core.records import (
    ImageRecord,
    IndexStats,
    RecordPage,
    SearchFilters,
    SearchHit,
    centre_summary,
    checked_page,
)
from visual_search.indexes.local.centre_meta import centre_meta, centre_of_meta
from visual_search.indexes.local.checks import checked_k, checked_records, unit_query, unit_rows
from visual_search.indexes.local.database import DATABASE_FILE_NAME, IndexDatabase
from visual_search.indexes.local.filter_cache import FilterCache
from visual_search.indexes.local.follower import SnapshotFollower
from visual_search.indexes.local.graph_sidecar import GraphSidecar
from visual_search.indexes.local.hnsw import HnswParams, remove_sidecars
from visual_search.indexes.local.identity import checked_identity, checked_new_identity
from visual_search.indexes.local.integrity import integrity_problems
from visual_search.indexes.local.lock import WriterLock
from visual_search.indexes.local.nearest import nearest, rescored
from visual_search.indexes.local.record_cache import RecordCache
from visual_search.indexes.local.vector_file import remove_vector_files

DEFAULT_ANN_THRESHOLD = 20_000
# Candidates beyond k re-scored in float32, so the graph's 8-bit (or the copy's float16) rounding cannot push a
# true top-k hit out: at 200k (bench_scale) 16 gave the recall@10 of a float16 re-rank of 40 first; 8 lost 0.0005.
_RESCORE_EXTRA = 16

logger = logging.getLogger(__name__)


class LocalIndex:
    """A VectorIndex in a local directory, for one model: many reader processes, at most one writer.

    `LocalIndex(directory, model_id=..., dimension=..., writable=True)` creates the directory if needed and
    takes the writer lock (IndexLockedError if another writer holds it). `writable=False` opens an existing
    index; model_id and dimension may then be omitted and are read from disk (attributes `model_id`,
    `dimension`). Given ones that differ from the stored ones raise ModelMismatchError.

    Every upsert/delete is one SQLite transaction (WAL), vectors included as float32: a crash leaves the last
    committed state, and searches in any process see each commit from their next call. Search is exact (one
    matrix product over an in-memory float32 copy) until the index holds `ann_threshold` vectors. Above it,
    the writer keeps two derived files, written together and named in one commit: an HNSW graph over 8-bit
    codes, and a float16 copy of the vectors that searching processes read row by row instead of loading
    (see vector_file.py). It refreshes them on close()/optimize(), during upserts whenever the rows they do not
    cover reach their size (so graph work stays incremental), and rebuilds the graph once a fifth of it is
    deleted rows. Searches re-rank the graph's candidates from that copy, add an exact pass over the
    rows committed since, and give every hit its score from the float32 vector in SQLite.
    Methods are thread-safe (serialised by one lock).

    Query-domain centre (core/centre.py): SQLite keeps every vector raw, as the embedder made it; the vector file,
    the graph and searches use them projected with the centre recorded in the database, applied to queries
    alike. `set_centre` (writer) records a new one and rebuilds those derived structures from the raw vectors,
    re-embedding nothing. get_vector and iter_vectors give raw vectors. A `model_id` with a centre marker
    (`centre.centred_space_id`) must name the stored centre (ModelMismatchError otherwise).
    """

    backend = "embedded"

    def __init__(
        self,
        directory: str | Path,
        *,
        model_id: str | None = None,
        dimension: int | None = None,
        writable: bool = False,
        ann_threshold: int = DEFAULT_ANN_THRESHOLD,
        hnsw: HnswParams = HnswParams(),
    ):
        self.directory = Path(directory)
        self.writable = writable
        self.ann_threshold = ann_threshold
        self.hnsw = hnsw
        self._mutex = threading.RLock()
        self._writer_lock: WriterLock | None = None
        self._store: IndexDatabase | None = None
        database = self.directory / DATABASE_FILE_NAME
        if writable:
            self.directory.mkdir(parents=True, exist_ok=True)
        elif not database.exists():
            raise NotFoundError(f"no index at {self.directory} (no {DATABASE_FILE_NAME}); index some images first")
        given_space = model_id
        model_id = domain_centre.split_space_id(model_id)[0] if model_id is not None else None
        try:
            self._store = IndexDatabase(database)
            # The model check comes before the writer lock: a wrong model is the more useful error to report.
            meta = self._stored_meta()
            domain_centre.checked_space(
                given_space, meta.get("model_id", model_id or ""), centre_of_meta(meta), f"the index at {directory}"
            )
            if meta:
                self.model_id, self.dimension = checked_identity(self.directory, meta, model_id, dimension)
            if writable:
                self._writer_lock = WriterLock(self.directory)
            if not meta:
                self.model_id, self.dimension = self._create(model_id, dimension)
        except sqlite3.DatabaseError as error:
            self.close()
            raise IndexCorruptError(f"{database} is not a readable index database: {error}") from error
        except BaseException:
            self.close()
            raise
        if writable:
            meta = self._db.meta()
            remove_sidecars(self.directory, keep=meta["ann_file"])
            remove_vector_files(self.directory, keep=meta.get("vector_file", ""))
        self.colour_dimension = colour_dimension_of(self.model_id)
        self._sidecar = GraphSidecar(self._store, self.directory, self.dimension, hnsw, self.colour_dimension)
        self._view = SnapshotFollower(self.directory, self.dimension, self._sidecar, self.colour_dimension)
        self._filters = FilterCache()
        self._records = RecordCache()

    def _stored_meta(self) -> dict[str, str]:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        return self._db.meta() if self._db.connection.execute(query).fetchone() else {}

    def _create(self, model_id: str | None, dimension: int | None) -> tuple[str, int]:
        if not self.writable:
            raise NotFoundError(f"no index at {self.directory} yet; index some images first")
        meta = self._stored_meta()  # a writer that held the lock before ours may have created it meanwhile
        if meta:
            return checked_identity(self.directory, meta, model_id, dimension)
        model_id, dimension = checked_new_identity(model_id, dimension)
        self._db.create_schema(model_id, dimension, time.time())
        return model_id, dimension

    @property
    def _db(self) -> IndexDatabase:
        if self._store is None:
            raise IndexClosedError(f"the index at {self.directory} is closed")
        return self._store

    def _require_writable(self) -> None:
        if not self.writable:
            raise PermissionError(f"the index at {self.directory} was opened read-only (writable=False)")

    # -- writes -------------------------------------------------------------------------------------------

    def upsert(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        """Insert or replace by key, in one transaction. `vectors`: float (len(records), dimension), unit rows."""
        self._require_writable()
        unit = unit_rows(vectors, self.dimension)
        records = checked_records(records, len(unit))
        if not records:
            return
        with self._mutex:
            with self._db.write():
                self._db.replace(records, unit)
            try:
                self._sidecar.maintain(self.ann_threshold, min_tail=None)
            except OSError as error:
                # The upsert is committed; the graph only speeds searches up, so a failed save (disk full)
                # must not make the caller believe its records were lost. The next trigger retries.
                logger.warning("could not update the HNSW sidecar of %s: %s", self.directory, error)

    def delete(self, keys: Sequence[str]) -> int:
        """Remove these keys in one transaction; unknown keys are ignored. Returns how many were removed."""
        self._require_writable()
        with self._mutex:
            with self._db.write():
                seqs = self._db.seqs_of_keys(list(dict.fromkeys(keys)))
                if seqs:
                    self._db.remove_seqs(seqs)
            return len(seqs)

    def set_centre(self, centre: domain_centre.Centre | None) -> None:
        """Search with `centre` from now on (None: without one), re-projecting every stored vector.

        One commit records the centre and drops the graph and vector file (made with the old one), so every
        process searches exactly, with the new centre, until the rebuilt graph is published; nothing is
        re-embedded and no record is touched. The writer lock keeps other processes from writing meanwhile,
        and the mutex the writers of this process (a watcher thread, the server's routes)."""
        self._require_writable()
        if centre is not None:
            domain_centre.project(np.zeros((1, self.dimension), np.float32), centre, self.colour_dimension)
        with self._mutex:
            with self._db.write():
                self._db.set_meta(
                    {
                        **centre_meta(centre),
                        "ann_file": "",
                        "ann_watermark": "0",
                        "ann_size": "0",
                        "vector_file": "",
                        "vector_watermark": "0",
                        "vector_removal_id": "0",
                        "vector_centre_id": "",
                    }
                )
            remove_sidecars(self.directory, keep="")
            remove_vector_files(self.directory, keep="")
            self._sidecar.graph, self._sidecar.file = None, ""
            try:
                self._sidecar.maintain(self.ann_threshold, min_tail=1)
            except OSError as error:  # searches stay exact (and right) until the next trigger rebuilds it
                logger.warning("could not rebuild the HNSW sidecar of %s: %s", self.directory, error)

    @property
    def centre(self) -> domain_centre.Centre | None:
        """The query-domain centre as of the latest commit."""
        with self._mutex, self._db.snapshot():
            return centre_of_meta(self._db.meta())

    @property
    def space_id(self) -> str:
        """The id of the vector space searches run in: the model id, plus the centre's hash when there is one."""
        return domain_centre.centred_space_id(self.model_id, self.centre)

    def optimize(self) -> None:
        """Bring the HNSW sidecar up to date now (build, extend or rebuild), instead of at the next trigger."""
        self._require_writable()
        with self._mutex:
            self._sidecar.maintain(self.ann_threshold, min_tail=1)

    # -- reads --------------------------------------------------------------------------------------------

    def search(
        self,
        vector: np.ndarray,
        k: int,
        filters: SearchFilters | None = None,
        exclude_keys: Sequence[str] = (),
        *,
        exact: bool = False,
    ) -> list[SearchHit]:
        """At most k hits by descending cosine score; fewer only when fewer records match. `vector`: unit (dimension,).

        `exact=True` skips the HNSW graph (ground truth for evaluations and benchmarks).
        """
        raw_query = unit_query(vector, self.dimension)
        k = checked_k(k)
        with self._mutex, self._db.snapshot():
            self._view.refresh(self._db)
            centre = self._view.centre
            query = domain_centre.project(raw_query, centre, self.colour_dimension)
            excluded = np.asarray(self._db.seqs_of_keys(list(exclude_keys)), dtype=np.int64)
            only = (
                self._filters.select(filters, self._view.seen_generation, self._db.seqs_matching)
                if filters is not None and not filters.is_empty
                else None
            )
            graph = None if exact else self._sidecar.graph
            # Without a graph (its scores come from 8-bit codes) or a float16 base, every score is float32: final.
            all_float32 = graph is None and self._view.matrix.base_rows == 0
            seqs, scores = nearest(
                self._view.matrix,
                graph,
                query,
                k if all_float32 else k + _RESCORE_EXTRA,
                only=only,
                excluded_seqs=excluded,
                exact_below=self.ann_threshold,
            )
            if not all_float32:
                full_vectors = self._db.vectors_by_seq(seqs.tolist(), self.dimension)
                if centre is not None:
                    full_vectors = {
                        seq: domain_centre.project(raw, centre, self.colour_dimension)
                        for seq, raw in full_vectors.items()
                    }
                seqs, scores = rescored(full_vectors, seqs, query, k)
            records = self._records.records(seqs.tolist(), self._view.seen_generation, self._db.records_by_seq)
        return [SearchHit(records[seq], float(score)) for seq, score in zip(seqs.tolist(), scores) if seq in records]

    @property
    def ann_size(self) -> int:
        """Points (tombstones included) in the HNSW graph the last search used; 0 means searches are exact."""
        return self._sidecar.graph.size if self._sidecar.graph is not None else 0

    def get(self, keys: Sequence[str]) -> dict[str, ImageRecord]:
        with self._mutex:
            return self._db.records_by_key(list(keys))

    def get_vector(self, key: str) -> np.ndarray | None:
        """The stored unit vector, float32 (dimension,), or None for an unknown key."""
        with self._mutex:
            blob = self._db.vector_of_key(key)
        return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()

    def count(self) -> int:
        with self._mutex:
            return self._db.count()

    def list_records(self, offset: int = 0, limit: int = 50, filters: SearchFilters | None = None) -> RecordPage:
        """The records the filters accept, ordered by key, from `offset`, at most `limit`; and their total."""
        offset, limit = checked_page(offset, limit)
        with self._mutex, self._db.snapshot():
            records, total = self._db.records_page(filters, offset, limit)
        return RecordPage(records, total)

    def iter_vectors(self, batch_size: int = 1024) -> Iterator[tuple[list[str], np.ndarray]]:
        """Every (keys, unit vectors) in batches by ascending seq, each batch read in its own short snapshot so
        that a long pass never blocks writers; a record replaced during the pass is seen in its newest form."""
        after = 0
        while True:
            with self._mutex, self._db.snapshot():
                reader = self._db.vectors_after(after, self.dimension, batch=batch_size)
                batch = next(reader, None)
                reader.close()  # finishes its cursor before the snapshot ends
                if batch is None:
                    return
                seqs, vectors = batch
                keys = self._db.keys_by_seq(seqs.tolist())
            after = int(seqs[-1])
            yield [keys[seq] for seq in seqs.tolist()], vectors.copy()

    def stats(self) -> IndexStats:
        with self._mutex, self._db.snapshot():
            centre = centre_of_meta(self._db.meta())
            return IndexStats(
                self._db.count(),
                self.dimension,
                self.model_id,
                self._db.label_counts(),
                self.backend,
                centre=centre_summary(centre),
            )

    def check_integrity(self) -> list[str]:
        """Problems found (empty when healthy): SQLite's check, orphan rows, vector sizes, norms, sidecar file."""
        with self._mutex, self._db.snapshot():
            return integrity_problems(self._db, self.directory, self.dimension)

    # -- lifecycle ----------------------------------------------------------------------------------------

    @staticmethod
    def exists(directory: str | Path) -> bool:
        """Whether `directory` holds an index (a reader can open it)."""
        return (Path(directory) / DATABASE_FILE_NAME).is_file()

    def close(self) -> None:
        """Bring the HNSW sidecar up to date (writer, when enough rows are uncovered), then release everything."""
        with self._mutex:
            try:
                if self._store is not None and self.writable and hasattr(self, "_sidecar"):
                    graph_size = int(self._store.meta()["ann_size"])
                    self._sidecar.maintain(self.ann_threshold, min_tail=max(1000, graph_size // 10))
            finally:
                if self._store is not None:
                    self._store.close()
                    self._store = None
                if self._writer_lock is not None:
                    self._writer_lock.release()
                    self._writer_lock = None
                if hasattr(self, "_sidecar"):
                    self._sidecar.graph = None  # frees the graph's memory even if the caller keeps this object
                if hasattr(self, "_view"):
                    self._view.matrix.clear()  # closes the vector file and frees the tail

    def __enter__(self) -> LocalIndex:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
