"""Colour-aware similarity: a compact colour descriptor of the object region, and the signature that carries it.

ImageNet features largely ignore colour, so the red dress and the blue one look alike to the network. Each
indexed vector is therefore a *signature* [appearance | colour] / sqrt(2), both parts unit vectors, so one index
(embedded or OpenSearch) stores and searches it unchanged. A query with colour weight w in [0, 1] searches with
[appearance | w * colour] (normalised), whose inner product with a stored signature ranks by
appearance·appearance' + w * colour·colour'; `fused_score` turns the index's score back into
(appearance·appearance' + w * colour·colour') / (1 + w), so with w = 0 ranking and scores are exactly those of
the appearance vector alone.

The descriptor is a soft hue x saturation x value histogram (12 x 2 x 2 chromatic bins + 4 grey levels), each
pixel weighted by how much it belongs to the object (the caller passes the model's own activation map), square-
rooted so that the inner product of two descriptors is their Bhattacharyya coefficient. Pure numpy: it runs the
same in-process, on Lambda and inside the SageMaker endpoint.
"""

from __future__ import annotations

import numpy as np

from visual_search.core.errors import InvalidRequestError

COLOUR_DESCRIPTOR_ID = "hsv52-v2"  # part of the model id: change it whenever the descriptor changes
MODEL_ID_MARKER = "+colour-"
HUE_BINS = 12
COLOUR_DIMENSION = HUE_BINS * 2 * 2 + 4
MAX_COLOUR_WEIGHT = 1.0
_GREY_LEVELS = 4
_HALF = np.float32(1.0 / np.sqrt(2.0))


def colour_model_id(appearance_model_id: str) -> str:
    """The id of a model whose vectors are signatures of `appearance_model_id` and this descriptor."""
    return f"{appearance_model_id}{MODEL_ID_MARKER}{COLOUR_DESCRIPTOR_ID}"


def colour_dimension_of(model_id: str | None) -> int:
    """How many trailing numbers of the model's vectors are the colour descriptor (0: the model has none).

    The model id is what every index records and checks, so the layout of its vectors is read from it."""
    if model_id and model_id.endswith(MODEL_ID_MARKER + COLOUR_DESCRIPTOR_ID):
        return COLOUR_DIMENSION
    return 0


def colour_descriptor(rgb: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """float32 (COLOUR_DIMENSION,), unit L2 norm, of an RGB image (H, W, 3) with values 0-255.

    `weights` (H, W), non-negative, says how much each pixel counts (the object region); None counts all."""
    pixels = np.asarray(rgb, dtype=np.float32).reshape(-1, 3) / 255.0
    weight = np.ones(len(pixels), np.float32) if weights is None else np.asarray(weights, np.float32).reshape(-1)
    if weight.shape[0] != pixels.shape[0]:
        raise ValueError(f"weights cover {weight.shape[0]} pixels, the image has {pixels.shape[0]}")
    top, bottom = pixels.max(axis=1), pixels.min(axis=1)
    chroma = top - bottom
    hue = _hue(pixels, top, chroma)
    saturation = chroma / np.maximum(top, 1e-6)
    # Soft memberships, so that a colour near a bin edge does not jump between bins with a little noise.
    chromatic = np.clip((chroma - 0.06) / 0.12, 0.0, 1.0) * weight
    saturated = np.clip((saturation - 0.35) / 0.3, 0.0, 1.0)
    bright = np.clip((top - 0.3) / 0.4, 0.0, 1.0)
    position = hue * HUE_BINS - 0.5  # bin centres at (i + 0.5) / HUE_BINS
    lower = np.floor(position)
    upper_share = (position - lower).astype(np.float32)
    lower_bin = lower.astype(np.int64) % HUE_BINS
    upper_bin = (lower_bin + 1) % HUE_BINS
    histogram = np.zeros(COLOUR_DIMENSION, np.float64)
    for sat_index, sat_share in ((0, 1.0 - saturated), (1, saturated)):
        for val_index, val_share in ((0, 1.0 - bright), (1, bright)):
            mass = chromatic * sat_share * val_share
            offset = (sat_index * 2 + val_index) * HUE_BINS
            histogram[offset : offset + HUE_BINS] += np.bincount(lower_bin, mass * (1.0 - upper_share), HUE_BINS)
            histogram[offset : offset + HUE_BINS] += np.bincount(upper_bin, mass * upper_share, HUE_BINS)
    grey = weight - chromatic
    level = np.clip(top * (_GREY_LEVELS - 1), 0.0, _GREY_LEVELS - 1 - 1e-6)
    low = np.floor(level).astype(np.int64)
    share = level - low
    histogram[-_GREY_LEVELS:] += np.bincount(low, grey * (1.0 - share), _GREY_LEVELS)
    histogram[-_GREY_LEVELS:] += np.bincount(low + 1, grey * share, _GREY_LEVELS + 1)[:_GREY_LEVELS]
    root = np.sqrt(np.maximum(histogram, 0.0))
    norm = float(np.linalg.norm(root))
    if norm == 0.0:  # no weight anywhere: fall back to a flat descriptor rather than a zero vector
        root = np.ones(COLOUR_DIMENSION)
        norm = float(np.linalg.norm(root))
    return (root / norm).astype(np.float32)


def signatures(appearance: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Unit rows [appearance | colour] / sqrt(2) from unit appearance rows (N, D) and unit colour rows (N, C)."""
    return np.ascontiguousarray(np.concatenate([appearance, colours], axis=1) * _HALF, dtype=np.float32)


def query_vector(signature: np.ndarray, colour_dimension: int, weight: float) -> np.ndarray:
    """The unit query for a stored-format signature (D + C,) and colour weight w: [appearance | w colour]."""
    check_colour_weight(weight)
    split = signature.shape[-1] - colour_dimension
    appearance = signature[:split] / max(float(np.linalg.norm(signature[:split])), 1e-12)
    colour = signature[split:] / max(float(np.linalg.norm(signature[split:])), 1e-12)
    query = np.concatenate([appearance, weight * colour]) / np.sqrt(1.0 + weight * weight)
    return query.astype(np.float32)


def fused_score(index_score: float, weight: float) -> float:
    """(appearance similarity + w colour similarity) / (1 + w) from the index's cosine of query and signature."""
    return float(index_score * np.sqrt(2.0) * np.sqrt(1.0 + weight * weight) / (1.0 + weight))


def check_colour_weight(weight: float) -> None:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= MAX_COLOUR_WEIGHT:
        raise InvalidRequestError(f"colour must be a number from 0 to {MAX_COLOUR_WEIGHT:g}, not {weight!r}")


def _hue(pixels: np.ndarray, top: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Hue in [0, 1) (0 red, 1/3 green, 2/3 blue); 0 where there is no chroma."""
    red, green, blue = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        top == red,
        ((green - blue) / safe) % 6.0,
        np.where(top == green, (blue - red) / safe + 2.0, (red - green) / safe + 4.0),
    )
    return np.where(chroma > 0, hue / 6.0, 0.0) % 1.0
