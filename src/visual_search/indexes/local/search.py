"""How the embedded index answers a query: exact on small or filtered sets, else HNSW plus an exact tail."""

from __future__ import annotations

import numpy as np

from visual_search.indexes.local.hnsw import HnswGraph
from visual_search.indexes.local.matrix import VectorMatrix

# Beyond this many graph candidates an exact pass is as cheap as widening the approximate search again.
_MAX_FETCH = 4096


def nearest(
    matrix: VectorMatrix,
    graph: HnswGraph | None,
    query: np.ndarray,
    k: int,
    *,
    only_seqs: np.ndarray | None,
    excluded_seqs: np.ndarray,
    exact_below: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The best k live (seqs, scores) for a unit query, descending score.

    Exact whenever there is no graph or the filters leave fewer than `exact_below` candidates (a matrix
    product over them is cheap, and graph search under a selective filter loses recall). Otherwise the graph
    answers for the seqs it covers, over-fetching to make up for tombstones, exclusions and filters, and an
    exact pass covers the rows added since the graph was saved. When the graph cannot produce k eligible hits
    the search falls back to exact, so a search returns k hits whenever k records match.
    """
    if graph is None or (only_seqs is not None and len(only_seqs) < exact_below):
        return matrix.top_k(query, k, only_seqs=only_seqs, excluded_seqs=excluded_seqs)
    covered_live = matrix.live_count - matrix.live_count_after(graph.watermark)
    eligible_fraction = covered_live / max(graph.size, 1)
    if only_seqs is not None:
        eligible_fraction *= len(only_seqs) / max(matrix.live_count, 1)
    fetch = int((k + len(excluded_seqs)) / max(eligible_fraction, 1e-3) * 1.5) + 10
    while True:
        seqs, scores = graph.search(query, fetch)
        keep = matrix.live_mask(seqs)
        if len(excluded_seqs):
            keep &= ~np.isin(seqs, excluded_seqs)
        if only_seqs is not None:
            keep &= np.isin(seqs, only_seqs)
        if keep.sum() >= k or fetch >= graph.size:
            break
        if fetch >= _MAX_FETCH:
            return matrix.top_k(query, k, only_seqs=only_seqs, excluded_seqs=excluded_seqs)
        fetch *= 4
    tail_seqs, tail_scores = matrix.top_k(
        query, k, only_seqs=only_seqs, after_seq=graph.watermark, excluded_seqs=excluded_seqs
    )
    seqs = np.concatenate([seqs[keep], tail_seqs])
    scores = np.concatenate([scores[keep], tail_scores])
    if len(seqs) < k and matrix.live_count > len(seqs):
        # The graph missed eligible points (it does not promise to return all of them): exact is the answer.
        return matrix.top_k(query, k, only_seqs=only_seqs, excluded_seqs=excluded_seqs)
    order = np.lexsort((seqs, -scores))[:k]
    return seqs[order], scores[order]
