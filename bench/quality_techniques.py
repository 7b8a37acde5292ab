"""Retrieval techniques tried by bench_quality.py, on numpy arrays: pooling variants of the last feature map and
re-ranking by query expansion / database-side augmentation. Unit rows in, unit rows out."""

from __future__ import annotations

import numpy as np

from visual_search.embedders.onnx.pooling import gem, rmac  # noqa: F401 - the product's own pooling code
from visual_search.embedders.onnx.pooling import unit_rows as unit


def alpha_query_expansion(
    queries: np.ndarray, gallery: np.ndarray, n: int, alpha: float, exclude_self: bool
) -> np.ndarray:
    """α-QE (Radenović et al.): each query plus its top-n gallery neighbours weighted by similarity^α."""
    similarities = queries @ gallery.T
    if exclude_self:
        np.fill_diagonal(similarities, -np.inf)
    top = np.argsort(-similarities, axis=1)[:, :n]
    weights = np.maximum(np.take_along_axis(similarities, top, axis=1), 0.0) ** alpha
    return unit(queries + np.einsum("qn,qnd->qd", weights, gallery[top]))


def database_augmentation(gallery: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """DBA: every gallery vector replaced by itself plus its top-n neighbours weighted by similarity^α."""
    similarities = gallery @ gallery.T
    np.fill_diagonal(similarities, -np.inf)
    top = np.argsort(-similarities, axis=1)[:, :n]
    weights = np.maximum(np.take_along_axis(similarities, top, axis=1), 0.0) ** alpha
    return unit(gallery + np.einsum("gn,gnd->gd", weights, gallery[top]))


def fused(appearance: np.ndarray, colour: np.ndarray, weight: float) -> np.ndarray:
    """Rows whose inner products are appearance·appearance' + w colour·colour' when paired with `fused(...,1)`,
    i.e. the query side of core/colour.py's signature scheme (unnormalised; ranking is all that is scored)."""
    return np.concatenate([appearance, weight * colour], axis=1).astype(np.float32)
