"""An OpenSearch index's identity: which model and dimension its vectors belong to, kept in the mapping's
`_meta`, checked on every open, and written when the index is created (a race with another creator included)."""

from __future__ import annotations

from typing import Any

from visual_search.core.errors import InvalidRequestError, ModelMismatchError, NotFoundError
from visual_search.indexes.opensearch import documents as docs
from visual_search.indexes.opensearch.session import OpenSearchSession


def open_or_create(
    session: OpenSearchSession,
    endpoint: str,
    index_name: str,
    model_id: str | None,
    dimension: int | None,
    new_index: dict[str, Any] | None,
) -> tuple[str, int, str | None]:
    """The index's (model_id, dimension, engine), creating it from `new_index` when missing and one is given.
    Raises NotFoundError (missing, nothing to create) and ModelMismatchError (another model's vectors)."""
    from opensearchpy.exceptions import RequestError

    meta, vector_mapping = read_index_meta(session, index_name)
    if meta is None and new_index is not None:
        if model_id is None or dimension is None:
            raise InvalidRequestError("creating an OpenSearch index needs the model id and dimension of its vectors")
        try:
            session.call(
                lambda client: client.indices.create(index=index_name, body=new_index),
                what=f"create it in {index_name!r}",
            )
            return model_id, dimension, None
        except InvalidRequestError as error:  # another process created it first: check theirs below
            if not isinstance(error.__cause__, RequestError) or "already_exists" not in str(error.__cause__):
                raise
        meta, vector_mapping = read_index_meta(session, index_name)
    if meta is None:
        raise NotFoundError(f"OpenSearch index {index_name!r} does not exist at {endpoint}")
    engine = (vector_mapping.get("method") or {}).get("engine", "lucene")
    if model_id is None:
        model_id = meta.get("model_id")
    if dimension is None:
        dimension = meta.get("dimension") or vector_mapping.get("dimension")
    if model_id is None or dimension is None:
        raise ModelMismatchError(f"OpenSearch index {index_name!r} does not record the model that made its vectors")
    problem = docs.model_mismatch(meta, vector_mapping, model_id=model_id, dimension=dimension)
    if problem:
        raise ModelMismatchError(f"OpenSearch index {index_name!r} {problem}")
    return model_id, int(dimension), engine


def read_index_meta(session: OpenSearchSession, index_name: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The index's mapping `_meta` ({} when it has none) and its vector field mapping; (None, {}) when missing."""
    from opensearchpy.exceptions import NotFoundError as OpenSearchNotFound

    try:
        answer = session.call(
            lambda client: client.indices.get_mapping(index=index_name), what=f"read the mapping of {index_name!r}"
        )
    except OpenSearchNotFound:
        return None, {}
    mappings = next(iter(answer.values()))["mappings"]
    return mappings.get("_meta") or {}, (mappings.get("properties") or {}).get(docs.VECTOR_FIELD) or {}
