"""Pooling the last feature map into one vector, beyond the graph's global average: R-MAC and GeM.

Both run in numpy on the feature map the graph already outputs, so the in-process model and the SageMaker
endpoint (which runs this same code) give identical vectors. R-MAC (Tolias et al., 2016) max-pools square
regions at three scales (the whole map, a 2x2 and a 3x3 grid of overlapping squares), L2-normalises each
region's vector and sums them, so a garment that fills only part of the photo still dominates some regions;
no PCA-whitening is learnt (nothing is trained on the catalogue). GeM (Radenović et al., 2018) is the
generalised mean; p = 1 is average pooling.
"""

from __future__ import annotations

import numpy as np


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return (rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def rmac(feature_maps: np.ndarray, levels: int = 3) -> np.ndarray:
    """(N, C, h, w) → (N, C) unit rows."""
    _, _, height, width = feature_maps.shape
    # Channels last: each region's max is then an element-wise maximum of whole C-long rows, which numpy
    # vectorises, instead of C small reductions over a strided h x w window (8x faster for one 10 x 10 x 1280 map,
    # and the same numbers: a maximum does not depend on the order it is taken in).
    channels_last = np.ascontiguousarray(np.moveaxis(feature_maps, 1, -1))
    total = np.zeros(feature_maps.shape[:2], np.float32)
    short = min(height, width)
    for level in range(1, levels + 1):
        size = max(1, int(round(2 * short / (level + 1))))
        for top in np.linspace(0, height - size, level).round().astype(int):
            for left in np.linspace(0, width - size, level).round().astype(int):
                total += unit_rows(channels_last[:, top : top + size, left : left + size, :].max(axis=(1, 2)))
    return unit_rows(total)


def gem(feature_maps: np.ndarray, p: float = 3.0) -> np.ndarray:
    """(N, C, h, w) → (N, C) unit rows: (mean x^p)^(1/p) per channel."""
    clipped = np.maximum(feature_maps.astype(np.float32), 1e-6)
    return unit_rows(np.mean(clipped**p, axis=(2, 3)) ** (1.0 / p))
