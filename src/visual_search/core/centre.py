"""The query-domain centre: the mean appearance of shoppers' photos, subtracted from queries and catalogue alike.

Shoppers' photos share a component (light, clutter, phone optics) that dominates their similarity to anything.
Subtracting the mean appearance vector of photos *from the query side* from both the query and every catalogue
vector, then re-normalising, removes it (docs/BENCHMARKS.md, "Query-domain centre"). Only the appearance part of
a signature [appearance | colour] / sqrt(2) is moved: its norm is kept, so the colour part, its weight and
`colour.fused_score` stay exactly as they were. A model without a colour descriptor is all appearance.

A centre is identified by the hash of its bytes; the hash becomes part of the id of the vector space an index
searches (`centred_space_id`), so vectors projected with another centre are refused. Pure numpy: the same code
runs in-process, on Lambda and in tests.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import numpy as np

from visual_search.core.errors import InvalidRequestError, ModelMismatchError

CENTRE_MARKER = "+centre-"
_HASH_CHARS = 12
# A centre that leaves this little of a vector would make its direction noise: such rows keep the raw direction.
_MIN_RESIDUAL = 1e-6


@dataclass(frozen=True, eq=False)
class Centre:
    """A mean appearance vector (float32, the appearance dimension) and how many photos it was fitted on.
    Two centres are equal when their vectors (hence ids) and photo counts are."""

    vector: np.ndarray
    photos: int

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Centre) and (self.centre_id, self.photos) == (other.centre_id, other.photos)

    def __hash__(self) -> int:
        return hash((self.centre_id, self.photos))

    @property
    def centre_id(self) -> str:
        """A short content hash of the vector's float32 bytes: equal centres, equal ids, on every machine."""
        return hashlib.sha256(np.ascontiguousarray(self.vector, dtype="<f4").tobytes()).hexdigest()[:_HASH_CHARS]

    @property
    def dimension(self) -> int:
        return int(self.vector.shape[0])

    def encoded(self) -> str:
        """The vector as base64 of little-endian float32, for a text field (SQLite meta, OpenSearch _meta)."""
        return base64.b64encode(np.ascontiguousarray(self.vector, dtype="<f4").tobytes()).decode("ascii")

    @classmethod
    def decoded(cls, text: str, photos: int) -> Centre:
        vector = np.frombuffer(base64.b64decode(text.encode("ascii")), dtype="<f4").astype(np.float32)
        return cls(vector, int(photos))

    def distance_to(self, other: Centre | None) -> float:
        """How far this centre is from `other` (L2; from the origin when None): "how far the centre moved"."""
        return float(np.linalg.norm(self.vector - (other.vector if other is not None else 0.0)))


def appearance_dimension(vector_dimension: int, colour_dimension: int) -> int:
    return vector_dimension - colour_dimension


def appearance_units(signatures: np.ndarray, colour_dimension: int) -> np.ndarray:
    """The unit appearance rows (N, D) of signatures (N, D + C): what a centre is the mean of."""
    rows = np.atleast_2d(np.asarray(signatures, dtype=np.float32))
    appearance = rows[:, : rows.shape[1] - colour_dimension].astype(np.float64)
    norms = np.linalg.norm(appearance, axis=1, keepdims=True)
    return (appearance / np.maximum(norms, 1e-12)).astype(np.float32)


def fit_centre(signatures: np.ndarray, colour_dimension: int) -> Centre:
    """The mean unit appearance of these photos' signatures. InvalidRequestError when there are none."""
    rows = np.atleast_2d(np.asarray(signatures, dtype=np.float32))
    if rows.shape[0] == 0 or rows.size == 0:
        raise InvalidRequestError("fitting a centre needs at least one photo")
    return Centre(
        appearance_units(rows, colour_dimension).astype(np.float64).mean(axis=0).astype(np.float32), len(rows)
    )


def project(signatures: np.ndarray, centre: Centre | None, colour_dimension: int) -> np.ndarray:
    """Signatures with the centre taken out of their appearance part (re-normalised to its old norm).

    Rows (N, D + C) or one (D + C,) vector, float32 out; the colour part is returned untouched. `None` returns
    the input itself (not a copy): without a centre, vectors and scores are exactly those of before."""
    if centre is None:
        return signatures
    array = np.asarray(signatures, dtype=np.float32)
    rows = np.atleast_2d(array)
    split = rows.shape[1] - colour_dimension
    if split != centre.dimension:
        raise ModelMismatchError(
            f"the centre has {centre.dimension} numbers but these vectors' appearance part has {split}: "
            "it was fitted for another model"
        )
    appearance = rows[:, :split].astype(np.float64)
    norms = np.linalg.norm(appearance, axis=1, keepdims=True)
    unit = appearance / np.maximum(norms, 1e-12)
    moved = unit - centre.vector.astype(np.float64)
    moved_norms = np.linalg.norm(moved, axis=1, keepdims=True)
    moved = np.where(moved_norms > _MIN_RESIDUAL, moved / np.maximum(moved_norms, 1e-300), unit)
    out = np.empty_like(rows, dtype=np.float32)
    out[:, :split] = moved * norms
    out[:, split:] = rows[:, split:]
    return out.reshape(array.shape)


def centred_space_id(model_id: str, centre: Centre | None) -> str:
    """The id of the vector space an index searches: the model's id, plus the centre's hash when there is one."""
    return model_id if centre is None else f"{model_id}{CENTRE_MARKER}{centre.centre_id}"


def split_space_id(space_id: str) -> tuple[str, str | None]:
    """(model id, centre id or None) of a vector-space id made by `centred_space_id`."""
    model_id, marker, centre_id = space_id.rpartition(CENTRE_MARKER)
    return (model_id, centre_id) if marker else (space_id, None)


def checked_space(given_model_id: str | None, stored_model_id: str, centre: Centre | None, where: str) -> None:
    """Refuses (ModelMismatchError) a caller that names a vector space of another centre than the stored one.

    A plain model id (no centre marker) is the raw space every index accepts and projects itself."""
    if given_model_id is None:
        return
    _, given_centre = split_space_id(given_model_id)
    if given_centre is None:
        return
    stored = centred_space_id(stored_model_id, centre)
    if given_model_id != stored:
        raise ModelMismatchError(
            f"{where} searches the vector space {stored!r}, not {given_model_id!r}: vectors projected with "
            "another query-domain centre give meaningless scores; re-project them (visual-search adapt) or "
            "open the index with the raw model id"
        )
