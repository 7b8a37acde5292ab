"""The embedded index's self-check: SQLite's own check, orphan rows, vector sizes and norms, and the files the
database names (HNSW sidecar, float16 vector copy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visual_search.indexes.local.database import IndexDatabase


def integrity_problems(store: IndexDatabase, directory: Path, dimension: int) -> list[str]:
    """Problems found (empty when healthy); run inside a snapshot of `store`."""
    problems = store.integrity_problems(dimension)
    if not problems:
        for seqs, vectors in store.vectors_after(0, dimension):
            norms = np.linalg.norm(vectors, axis=1)
            bad = seqs[~(np.abs(norms - 1.0) < 1e-3)]
            if len(bad):
                problems.append(f"vectors of seqs {bad[:5].tolist()} are not unit length")
    meta = store.meta()
    for role, name in (("HNSW sidecar", meta["ann_file"]), ("vector file", meta.get("vector_file", ""))):
        if name and not (directory / name).is_file():
            problems.append(f"the {role} {name} named in the database is missing")
    return problems
