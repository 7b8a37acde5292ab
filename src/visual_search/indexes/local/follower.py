"""Keeps one process's view of an embedded index (matrix and graph) in step with the database's commits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visual_search.core.centre import Centre, project
from visual_search.indexes.local.centre_meta import centre_of_meta
from visual_search.indexes.local.database import IndexDatabase
from visual_search.indexes.local.graph_sidecar import GraphSidecar
from visual_search.indexes.local.matrix import VectorMatrix
from visual_search.indexes.local.vector_file import VectorFile, VectorFileError


class SnapshotFollower:
    """`matrix` and `sidecar.graph` as of the last commit `refresh` saw, reading only what changed since.

    The matrix reads from the vector file the writer last published and reads from SQLite only the rows committed
    after it; removals come from the database's change log (or, once that log was trimmed, from the live seqs).
    The matrix holds vectors projected with the index's query-domain centre (`centre`, None for none): rows from
    SQLite (raw) are projected as they are read, and a new centre reloads everything.
    """

    def __init__(self, directory: Path, dimension: int, sidecar: GraphSidecar, colour_dimension: int = 0):
        self.directory, self.dimension, self.sidecar = directory, dimension, sidecar
        self.colour_dimension = colour_dimension
        self.centre: Centre | None = None
        self.matrix = VectorMatrix(dimension)
        self.seen_generation = -1  # -1: nothing loaded yet
        self._seen_removal = 0
        self._loaded_through_seq = 0
        self._vector_file = ""  # the file the matrix reads ("" when every row came from SQLite)
        self._unreadable_file = ""  # a named file that could not be opened last time

    def refresh(self, db: IndexDatabase) -> None:
        """Call inside db.snapshot()."""
        generation = db.generation()
        if generation == self.seen_generation:
            return
        meta = db.meta()
        centre = centre_of_meta(meta)
        if (
            self.seen_generation < 0
            or int(meta["removals_pruned_through"]) > self._seen_removal
            or meta.get("vector_file", "") != self._vector_file
            or _centre_id(centre) != _centre_id(self.centre)
        ):
            if not self._reload(db, meta, centre):
                return  # the named file was just replaced by the writer: keep the old view, retry next time
        else:
            removed, self._seen_removal = db.removals_after(self._seen_removal)
            self.matrix.remove(removed)
        for seqs, vectors in db.vectors_after(self._loaded_through_seq, self.dimension):
            self.matrix.append(seqs, project(vectors, self.centre, self.colour_dimension))
            self._loaded_through_seq = int(seqs[-1])
        if not self.sidecar.follow(meta):
            return  # leaving the generation unseen makes the next search retry
        self.seen_generation = generation

    def _reload(self, db: IndexDatabase, meta: dict[str, str], centre: Centre | None) -> bool:
        """Start over from the vector file `meta` names, or from nothing (every row then comes from SQLite).

        False when that file is gone and an older view exists: a writer replaces its file right after committing
        the new name, so the next snapshot names a readable one. A file missing twice in a row is read around."""
        name = meta.get("vector_file", "")
        if meta.get("vector_centre_id", "") != meta.get("centre_id", ""):
            name = ""  # its rows were projected with another centre: read (and project) every row from SQLite
        try:
            base = VectorFile(self.directory / name, self.dimension) if name else None
        except VectorFileError:
            if self.seen_generation >= 0 and self._unreadable_file != name:
                self._unreadable_file = name
                return False
            base = None  # slower (every vector read into memory), same answers
        if base is None:
            self.matrix.clear()
            self.matrix.reserve(db.count())
            self._seen_removal, self._loaded_through_seq = db.last_removal_id(), 0
        else:
            self.matrix.set_base(base)
            covered_through, removal_id = int(meta["vector_watermark"]), int(meta["vector_removal_id"])
            if int(meta["removals_pruned_through"]) > removal_id:  # the log no longer says what went since
                gone = np.setdiff1d(base.seqs, db.live_seqs_through(covered_through), assume_unique=True)
                self.matrix.remove(gone.tolist())
                self._seen_removal = db.last_removal_id()
            else:
                removed, self._seen_removal = db.removals_after(removal_id)
                self.matrix.remove(removed)
            self._loaded_through_seq = covered_through
        self._vector_file = meta.get("vector_file", "")
        self.centre = centre
        return True


def _centre_id(centre: Centre | None) -> str:
    return centre.centre_id if centre is not None else ""
