"""What the embedded index accepts from callers: unit float vectors of its dimension, well-formed records, k >= 1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from visual_search.core.errors import InvalidRequestError, ModelMismatchError
from visual_search.core.records import ImageRecord

# float32 embeddings normalised by the model are within ~1e-6 of unit length; 1e-3 tolerates float16 round trips
# while still catching unnormalised outputs (typical raw CNN features have norms far from 1).
UNIT_NORM_TOLERANCE = 1e-3


def unit_rows(vectors: np.ndarray, dimension: int) -> np.ndarray:
    """float32 (n, dimension) copy of `vectors`, each row rescaled to exactly unit length.

    Rows are rejected rather than silently normalised when their norm is off by more than UNIT_NORM_TOLERANCE:
    that means the caller's embedder forgot to normalise, and scores would otherwise be silently wrong.
    Raises ValueError (not floating point, not 2-D, non-finite, not unit) or ModelMismatchError (dimension).
    """
    array = np.asarray(vectors)
    if array.dtype.kind != "f":
        raise InvalidRequestError(f"vectors must be a floating point array (float32), got dtype {array.dtype}")
    if array.ndim != 2:
        raise InvalidRequestError(f"vectors must be 2-D (count, {dimension}), got shape {array.shape}")
    if array.shape[1] != dimension:
        raise ModelMismatchError(
            f"vectors have dimension {array.shape[1]} but this index holds dimension {dimension}; "
            "they come from another model"
        )
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise InvalidRequestError(f"vector row {bad} contains NaN or infinity")
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    off = np.flatnonzero(np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE)
    if len(off):
        raise InvalidRequestError(
            f"vector row {int(off[0])} has L2 norm {norms[off[0]]:.6g}; vectors must be unit length "
            f"(within {UNIT_NORM_TOLERANCE}) so that the dot product is the cosine similarity"
        )
    return (array / norms[:, None]).astype(np.float32)


def unit_query(vector: np.ndarray, dimension: int) -> np.ndarray:
    """float32 (dimension,) from a (dimension,) or (1, dimension) unit vector; same errors as unit_rows."""
    array = np.asarray(vector)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise InvalidRequestError(f"the query must be one vector of shape ({dimension},), got shape {array.shape}")
    return unit_rows(array.reshape(1, -1), dimension)[0]


def checked_records(records: Sequence[ImageRecord], vector_count: int) -> list[ImageRecord]:
    """The records, once each is known to be storable: unique non-empty keys, string label and attributes."""
    records = list(records)
    if len(records) != vector_count:
        raise InvalidRequestError(
            f"got {len(records)} records but {vector_count} vectors; they must pair up one to one"
        )
    seen: set[str] = set()
    for record in records:
        if not isinstance(record, ImageRecord):
            raise InvalidRequestError(f"expected ImageRecord, got {type(record).__name__}")
        if not isinstance(record.key, str) or not record.key:
            raise InvalidRequestError(f"record key must be a non-empty string, got {record.key!r}")
        if record.key in seen:
            raise InvalidRequestError(
                f"key {record.key!r} appears twice in one upsert; which vector wins would be a guess"
            )
        seen.add(record.key)
        if record.label is not None and not isinstance(record.label, str):
            raise InvalidRequestError(f"label of {record.key!r} must be a string or None, got {record.label!r}")
        for name, value in record.attributes.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InvalidRequestError(f"attributes of {record.key!r} must map str to str, got {name!r}: {value!r}")
    return records


def checked_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidRequestError(f"k must be a positive integer, got {k!r}")
    return int(k)
