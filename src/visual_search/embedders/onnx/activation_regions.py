"""Where the object is, read off the network's own last feature map (no detector, no extra model).

The channel sum of the final convolutional activations is high where ImageNet features fire, i.e. on objects,
and low on floors, walls and bedsheets (the "selective convolutional descriptor aggregation" observation of
Wei et al., 2017). Cells above the map's mean form the object mask; its 4-connected components are the regions.
"""

from __future__ import annotations

import numpy as np

from visual_search.core.images import CropBox


def activation_saliency(feature_map: np.ndarray) -> np.ndarray:
    """(h, w) non-negative saliency of one image's (channels, h, w) feature map, scaled to max 1."""
    saliency = np.maximum(np.asarray(feature_map, np.float32).sum(axis=0), 0.0)
    top = float(saliency.max())
    return saliency / top if top > 0 else np.ones_like(saliency)


def pixel_weights(saliency: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) object weights for pixels: the saliency, squared to favour the object's core, sampled at
    each pixel's cell (nearest neighbour; the cells are 32 input pixels wide)."""
    rows = np.minimum((np.arange(height) * saliency.shape[0]) // height, saliency.shape[0] - 1)
    cols = np.minimum((np.arange(width) * saliency.shape[1]) // width, saliency.shape[1] - 1)
    return np.square(saliency[np.ix_(rows, cols)])


def saliency_regions(saliency: np.ndarray, max_regions: int) -> list[tuple[CropBox, float]]:
    """Boxes (fractions of the map) around the connected above-mean parts of `saliency`, with the share of the
    above-mean saliency each holds, largest share first. A map with nothing above its mean gives one whole box."""
    if max_regions < 1:
        return []
    height, width = saliency.shape
    excess = np.maximum(saliency - float(saliency.mean()), 0.0)
    total = float(excess.sum())
    if total <= 0:
        return [(CropBox(0.0, 0.0, 1.0, 1.0), 1.0)]
    labels = _components(excess > 0)
    regions = []
    for label in range(1, int(labels.max()) + 1):
        rows, cols = np.nonzero(labels == label)
        share = float(excess[rows, cols].sum()) / total
        box = CropBox(
            x=float(cols.min() / width),
            y=float(rows.min() / height),
            w=float((cols.max() + 1 - cols.min()) / width),
            h=float((rows.max() + 1 - rows.min()) / height),
        )
        regions.append((box, round(share, 4)))
    regions.sort(key=lambda region: region[1], reverse=True)
    return regions[:max_regions]


def _components(mask: np.ndarray) -> np.ndarray:
    """4-connected component labels (1, 2, ...; 0 outside the mask) of a small boolean grid, by flood fill."""
    labels = np.zeros(mask.shape, np.int32)
    current = 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        current += 1
        labels[start] = current
        stack = [start]
        while stack:
            row, col = stack.pop()
            for next_row, next_col in ((row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)):
                if 0 <= next_row < mask.shape[0] and 0 <= next_col < mask.shape[1]:
                    if mask[next_row, next_col] and not labels[next_row, next_col]:
                        labels[next_row, next_col] = current
                        stack.append((next_row, next_col))
    return labels
