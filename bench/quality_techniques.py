"""Retrieval techniques tried by bench_quality.py, on numpy arrays: pooling variants of the last feature map and
re-ranking by query expansion / database-side augmentation. Unit rows in, unit rows out."""

from __future__ import annotations

import numpy as np


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def gem(feature_maps: np.ndarray, p: float = 3.0) -> np.ndarray:
    """Generalised-mean pooling (Radenović et al.): (mean x^p)^(1/p) per channel; p=1 is average pooling."""
    clipped = np.maximum(feature_maps.astype(np.float32), 1e-6)
    return unit(np.mean(clipped**p, axis=(2, 3)) ** (1.0 / p))


def rmac(feature_maps: np.ndarray, levels: int = 3) -> np.ndarray:
    """R-MAC (Tolias et al.) without whitening: max-pooled square regions at `levels` scales, each L2-normalised,
    summed and normalised."""
    n, _, height, width = feature_maps.shape
    total = np.zeros(feature_maps.shape[:2], np.float32)
    short = min(height, width)
    for level in range(1, levels + 1):
        size = max(1, int(round(2 * short / (level + 1))))
        steps = max(1, level)
        for top in np.linspace(0, height - size, steps).round().astype(int):
            for left in np.linspace(0, width - size, steps).round().astype(int):
                total += unit(feature_maps[:, :, top : top + size, left : left + size].max(axis=(2, 3)))
    return unit(total)


def alpha_query_expansion(queries: np.ndarray, gallery: np.ndarray, n: int, alpha: float, exclude_self: bool) -> np.ndarray:
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
