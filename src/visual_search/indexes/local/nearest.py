"""How the embedded index answers a query: exact on small or filtered sets, else HNSW (re-ranked) plus an exact tail."""

from __future__ import annotations

import numpy as np

from visual_search.indexes.local.filter_cache import Selection
from visual_search.indexes.local.hnsw import HnswGraph
from visual_search.indexes.local.matrix import VectorMatrix

# Beyond this many graph candidates an exact pass is as cheap as widening the approximate search again.
_MAX_FETCH = 4096
# Graph candidates fetched beyond k: the compressed codes misorder close neighbours, rarely by more than this.
_RERANK_EXTRA = 40
# A filter matching fewer rows is answered exactly: gathering them costs ~2.5 us a row (5000: ~12 ms), while the
# graph, which skips non-matching nodes but still walks them, needs ever more steps as the filter narrows.
_EXACT_FILTER_ROWS = 5000


def nearest(
    matrix: VectorMatrix,
    graph: HnswGraph | None,
    query: np.ndarray,
    k: int,
    *,
    only: Selection | None,
    excluded_seqs: np.ndarray,
    exact_below: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The best k live (seqs, scores) for a unit query, descending score.

    Exact whenever there is no graph or the filters leave fewer than `exact_below` (or _EXACT_FILTER_ROWS)
    candidates (a product over them is cheap, and graph search under a selective filter loses recall). Otherwise the graph
    answers for the seqs it covers (skipping non-matching ones inside the traversal, so a broad filter keeps
    its recall), over-fetching to make up for tombstones and exclusions; its candidates keep the graph's own
    (8-bit) scores, which the caller re-scores, and an exact pass covers the rows added since the graph was
    saved. When the graph cannot produce k eligible hits the search falls back to exact, so a search returns k
    hits whenever k records match.
    """
    only_seqs = only.seqs if only is not None else None
    if graph is None or (only_seqs is not None and len(only_seqs) < min(exact_below, _EXACT_FILTER_ROWS)):
        return matrix.top_k(query, k, only_seqs=only_seqs, excluded_seqs=excluded_seqs)
    covered_live = matrix.live_count - matrix.live_count_after(graph.watermark)
    eligible_fraction = covered_live / max(graph.size, 1)
    fetch = int((k + len(excluded_seqs)) / max(eligible_fraction, 1e-3) * 1.5) + 10
    fetch = max(fetch, k + _RERANK_EXTRA)
    while True:
        seqs, scores = graph.search(query, fetch, only_bitmap=only.bitmap if only is not None else None)
        keep = matrix.live_mask(seqs)
        if len(excluded_seqs):
            keep &= ~np.isin(seqs, excluded_seqs)
        if keep.sum() >= k or fetch >= graph.size:
            break
        if fetch >= _MAX_FETCH:
            return matrix.top_k(query, k, only_seqs=only_seqs, excluded_seqs=excluded_seqs)
        fetch *= 4
    # The graph's scores come from its 8-bit codes: close enough to rank candidates (bench_scale at 200k: the
    # same recall@10 as re-ranking them from the float16 copy first), and the caller re-scores the best few
    # from the float32 vectors, so no score it returns is approximate.
    seqs, scores = seqs[keep], scores[keep]
    tail_seqs, tail_scores = matrix.top_k(
        query, k, only_seqs=only_seqs, after_seq=graph.watermark, excluded_seqs=excluded_seqs
    )
    seqs = np.concatenate([seqs, tail_seqs])
    scores = np.concatenate([scores, tail_scores])
    if len(seqs) < k and matrix.live_count > len(seqs):
        # The graph missed eligible points (it does not promise to return all of them): exact is the answer.
        return matrix.top_k(query, k, only_seqs=only_seqs, excluded_seqs=excluded_seqs)
    order = np.lexsort((seqs, -scores))[:k]
    return seqs[order], scores[order]


def rescored(full_vectors: dict[int, np.ndarray], seqs: np.ndarray, query: np.ndarray, k: int):
    """The best k of `seqs` by their float32 vectors (`full_vectors`, seq -> vector), ties by seq.

    The compact copy the graph and matrix rank by is float16 (within 5e-4), and a photo searched for itself must
    score 1.0; callers fetch a few candidates beyond k so reorderings near the k-th are absorbed."""
    seqs = np.asarray([seq for seq in seqs.tolist() if seq in full_vectors], dtype=np.int64)
    scores = np.asarray([full_vectors[seq] @ query for seq in seqs.tolist()], dtype=np.float32)
    order = np.lexsort((seqs, -scores))[:k]
    return seqs[order], scores[order]
