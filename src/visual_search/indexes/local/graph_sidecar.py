"""Keeps an embedded index's HNSW graph and compact vector file in step with the files its database names."""

from __future__ import annotations

from pathlib import Path

from visual_search.core.centre import project
from visual_search.indexes.local.centre_meta import centre_of_meta
from visual_search.indexes.local.database import IndexDatabase
from visual_search.indexes.local.hnsw import HnswGraph, HnswParams, faiss_available, load_sidecar, remove_sidecars
from visual_search.indexes.local.vector_file import remove_vector_files, write_vector_file

# Beyond this fraction of tombstones, over-fetching past them costs more than rebuilding the graph.
_REBUILD_TOMBSTONE_FRACTION = 0.2


class GraphSidecar:
    """The graph a LocalIndex searches with (`graph`, None for exact search) and the file it came from.

    Readers only `follow` the file named in the database; the writer also `maintain`s it: builds it once the
    index reaches the ANN threshold, extends it with rows it does not cover, rebuilds it when tombstones pile
    up, drops it below the threshold. A new graph is saved under a new name, then named in one commit, then
    the old file is deleted, so a crash at any point leaves the database naming a complete file.
    Both hold the vectors projected with the index's query-domain centre (the database keeps the raw ones), and
    record which centre that was (`vector_centre_id`).
    """

    def __init__(
        self, store: IndexDatabase, directory: Path, dimension: int, params: HnswParams, colour_dimension: int = 0
    ):
        self._store, self._directory, self._dimension, self._params = store, directory, dimension, params
        self._colour_dimension = colour_dimension
        self.graph: HnswGraph | None = None
        self.file = ""

    def follow(self, meta: dict[str, str]) -> bool:
        """Load the graph `meta` names if it is not the current one. False when its file is already gone
        (the writer replaced it since this snapshot began): the caller should search exactly and retry."""
        if meta.get("vector_centre_id", "") != meta.get("centre_id", ""):
            meta = {**meta, "ann_file": ""}  # a graph of vectors projected with another centre is never searched
        if meta["ann_file"] == self.file:
            return True
        self.graph = self._named_graph(meta, read_only=True)
        self.file = meta["ann_file"] if self.graph is not None else ""
        return self.graph is not None or not meta["ann_file"]

    def _named_graph(self, meta: dict[str, str], *, read_only: bool) -> HnswGraph | None:
        """The graph `meta` names; `read_only=False` (the writer, which extends it) reads a read-only one afresh."""
        if meta["ann_file"] == self.file and (read_only or self.graph is None or not self.graph.read_only):
            return self.graph
        return load_sidecar(
            self._directory, meta["ann_file"], int(meta["ann_watermark"]), self._params, read_only=read_only
        )

    def maintain(self, ann_threshold: int, min_tail: int | None) -> None:
        """Writer only. `min_tail`: how many uncovered rows justify extending; None (after an upsert) means as
        many as the graph holds, so graph work grows geometrically and stays proportional to rows indexed."""
        meta = self._store.meta()
        live, graph_size = int(meta["record_count"]), int(meta["ann_size"])
        if min_tail is None and live >= ann_threshold and meta["ann_file"]:
            if self._store.last_seq() - int(meta["ann_watermark"]) < graph_size:
                return  # the cheap exit taken by most upserts: not even the issued seqs reach the graph's size
        if live < ann_threshold or not faiss_available():
            if meta["ann_file"]:
                self._publish(None)
            return
        with self._store.snapshot():
            meta = self._store.meta()  # the centre as of this snapshot: the rows read below are projected with it
            centre = centre_of_meta(meta)
            if meta.get("vector_centre_id", "") != meta.get("centre_id", "") and meta["ann_file"]:
                meta = {**meta, "ann_file": ""}  # made with another centre: start a new graph
            graph = self._named_graph(meta, read_only=False)
            covered_live = self._store.count_vectors_through(graph.watermark) if graph else 0
            if graph is not None and graph.size - covered_live > _REBUILD_TOMBSTONE_FRACTION * graph.size:
                graph = None
            elif graph is not None and live - covered_live < (graph.size if min_tail is None else min_tail):
                return
            graph = graph or HnswGraph.empty(self._dimension, self._params)
            for seqs, vectors in self._projected(self._store.vectors_after(graph.watermark, self._dimension), centre):
                graph.add(seqs, vectors, int(seqs[-1]))
            # The compact copy readers search is rewritten with the graph: both then cover the same snapshot.
            vectors_through, removal_id = self._store.last_seq(), self._store.last_removal_id()
            vector_file = write_vector_file(
                self._directory,
                self._projected(self._store.vectors_after(0, self._dimension), centre),
                self._dimension,
                vectors_through,
            )
        self._publish(
            graph,
            {
                "vector_file": vector_file,
                "vector_watermark": str(vectors_through),
                "vector_removal_id": str(removal_id),
                "vector_centre_id": meta.get("centre_id", ""),
            },
        )

    def _projected(self, batches, centre):
        for seqs, vectors in batches:
            yield seqs, project(vectors, centre, self._colour_dimension)

    def _publish(self, graph: HnswGraph | None, vectors: dict[str, str] | None = None) -> None:
        name = graph.save(self._directory) if graph is not None else ""
        vectors = vectors or {
            "vector_file": "",
            "vector_watermark": "0",
            "vector_removal_id": "0",
            "vector_centre_id": "",
        }
        with self._store.write():
            self._store.set_meta(
                {
                    "ann_file": name,
                    "ann_watermark": str(graph.watermark if graph else 0),
                    "ann_size": str(graph.size if graph else 0),
                    **vectors,
                }
            )
        remove_sidecars(self._directory, keep=name)
        remove_vector_files(self._directory, keep=vectors["vector_file"])
        self.graph, self.file = graph, name
