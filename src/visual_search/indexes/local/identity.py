"""Which model an embedded index belongs to: checked on every open, so vectors of two models never mix."""

from __future__ import annotations

from pathlib import Path

from visual_search.core.errors import IndexCorruptError, InvalidRequestError, ModelMismatchError
from visual_search.indexes.local.database import FORMAT_VERSION


def checked_identity(
    directory: Path, meta: dict[str, str], model_id: str | None, dimension: int | None
) -> tuple[str, int]:
    """The stored (model_id, dimension). A given model_id or dimension that differs raises ModelMismatchError;
    None accepts whatever is stored. An unknown format version raises IndexCorruptError."""
    if meta.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{directory} has index format {meta.get('format_version')!r}; this version reads {FORMAT_VERSION!r}"
        )
    stored_model, stored_dimension = meta["model_id"], int(meta["dimension"])
    if (model_id is not None and model_id != stored_model) or (dimension is not None and dimension != stored_dimension):
        raise ModelMismatchError(
            f"the index at {directory} holds vectors of model {stored_model!r} (dimension {stored_dimension}), "
            f"not {model_id!r} (dimension {dimension}); mixing models gives meaningless scores: "
            "index into a new directory, or open this one with the model that built it"
        )
    return stored_model, stored_dimension


def checked_new_identity(model_id: str | None, dimension: int | None) -> tuple[str, int]:
    if not model_id or isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
        raise InvalidRequestError(
            f"creating an index needs the model_id and a positive dimension of its vectors, got {model_id!r} and {dimension!r}"
        )
    return model_id, dimension
