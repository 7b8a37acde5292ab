"""Category-level retrieval quality: a query's neighbours should share its label.

recall@k is the fraction of queries with at least one same-label image among their top k (the usual metric of
deep metric learning); mAP is the mean, over queries, of the average precision of the whole ranked gallery,
where every same-label gallery image is relevant. In leave-one-out mode each gallery image is a query and is
excluded from its own ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RetrievalScores:
    recall_at_1: float
    recall_at_k: float
    k: int
    mean_average_precision: float
    queries: int

    def as_dict(self) -> dict:
        return {
            "recall@1": round(self.recall_at_1, 4),
            "recall@k": round(self.recall_at_k, 4),
            "k": self.k,
            "map": round(self.mean_average_precision, 4),
            "queries": self.queries,
        }


def score_retrieval(
    gallery_vectors: np.ndarray,
    gallery_labels: list[str],
    query_vectors: np.ndarray | None = None,
    query_labels: list[str] | None = None,
    *,
    k: int = 10,
    chunk: int = 512,
    same_items: bool = False,
) -> RetrievalScores:
    """Vectors are unit rows, float32 (n, d). Without queries, leave-one-out over the gallery. With queries and
    `same_items`, query i is another view of gallery item i (e.g. its object crop) and is left out the same way.
    Queries whose label no gallery image shares are left out (they have no right answer)."""
    leave_one_out = query_vectors is None or same_items
    if query_vectors is None or query_labels is None:
        if query_vectors is not None:
            raise ValueError("query vectors need their labels")
        query_vectors, query_labels = gallery_vectors, gallery_labels
    elif same_items and len(query_vectors) != len(gallery_vectors):
        raise ValueError("same_items needs one query per gallery item")
    label_ids = {label: i for i, label in enumerate(sorted(set(gallery_labels) | set(query_labels)))}
    gallery_ids = np.array([label_ids[label] for label in gallery_labels])
    query_ids = np.array([label_ids[label] for label in query_labels])
    hits_at_1 = hits_at_k = 0
    precisions: list[float] = []
    for start in range(0, len(query_vectors), chunk):
        similarities = query_vectors[start : start + chunk] @ gallery_vectors.T
        if leave_one_out:
            rows = np.arange(similarities.shape[0])
            similarities[rows, rows + start] = -np.inf
        order = np.argsort(-similarities, axis=1, kind="stable")
        relevant = gallery_ids[order] == query_ids[start : start + chunk, None]
        if leave_one_out:
            relevant[:, -1] = False  # the query itself, ranked last by its -inf score
        for row in relevant:
            total = int(row.sum())
            if total == 0:
                continue
            hits_at_1 += bool(row[0])
            hits_at_k += bool(row[:k].any())
            ranks = np.flatnonzero(row) + 1
            precisions.append(float(np.mean(np.arange(1, total + 1) / ranks)))
    queries = len(precisions)
    if queries == 0:
        return RetrievalScores(0.0, 0.0, k, 0.0, 0)
    return RetrievalScores(hits_at_1 / queries, hits_at_k / queries, k, float(np.mean(precisions)), queries)
