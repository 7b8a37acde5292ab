"""The OpenSearch side of an index: its mapping, how an ImageRecord becomes a document, and the k-NN query body.

Vectors use space type ``cosinesimil``. Every engine then scores a hit as ``(1 + cos) / 2`` (lucene through
Lucene's COSINE similarity, faiss by normalising and taking the inner product), so ``cosine_from_score``
recovers the exact cosine similarity the embedded index reports: 1.0 identical, higher is better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from visual_search.core.errors import InvalidRequestError, ModelMismatchError
from visual_search.core.records import ImageRecord, Product, SearchFilters

VECTOR_FIELD = "vector"
# With a query-domain centre (centring.py): the embedder's own vector (base64 float32, never indexed) and the id
# of the centre the k-NN vector was projected with. Documents of an index without a centre have neither.
RAW_FIELD = "raw_vector"
CENTRE_FIELD = "centre_id"
VECTOR_FIELDS = [VECTOR_FIELD, RAW_FIELD]
SCHEMA_VERSION = 1
# OpenSearch caps both `k` and a search's `size` at 10,000 by default (index.max_result_window).
MAX_K = 10_000
ENGINES = ("lucene", "faiss", "nmslib")
# Vector components are sent with 7 decimals (error <= 5e-8, a cosine moves by < 2e-6 at 1280-d): Python writes
# a float32 as 17 digits, and halving the JSON halves the client's encoding time and the node's parsing.
VECTOR_DECIMALS = 7
# Memory-saving vector storage (OpenSearch 2.17+). `encoder`: "sq" is Lucene's 7-bit scalar quantisation on
# the lucene engine and faiss's 16-bit one on faiss; "fp16" names faiss's explicitly.
MODES = ("in_memory", "on_disk")
COMPRESSION_LEVELS = ("1x", "2x", "4x", "8x", "16x", "32x")
ENCODERS: dict[str, dict[str, dict[str, Any]]] = {
    "lucene": {"sq": {"name": "sq"}},
    "faiss": {"sq": {"name": "sq"}, "fp16": {"name": "sq", "parameters": {"type": "fp16"}}},
}


def index_body(
    *,
    model_id: str,
    dimension: int,
    engine: str,
    m: int,
    ef_construction: int,
    ef_search: int,
    shards: int,
    replicas: int | None,
    mode: str | None = None,
    compression_level: str | None = None,
    encoder: str | None = None,
) -> dict[str, Any]:
    """Settings and mappings for a new index. `_meta` records the model so another process can refuse a mix.

    mode, compression_level and encoder (None: the node's defaults) are checked by `storage_problem`."""
    settings: dict[str, Any] = {"knn": True, "number_of_shards": shards}
    if engine != "lucene":
        # Read by faiss/nmslib at search time; lucene takes ef_search from the query's method_parameters.
        settings["knn.algo_param.ef_search"] = ef_search
    if replicas is not None:
        settings["number_of_replicas"] = replicas
    return {
        "settings": {"index": settings},
        "mappings": {
            "_meta": {"model_id": model_id, "dimension": dimension, "schema_version": SCHEMA_VERSION},
            "dynamic": "strict",
            # Attribute names are the catalogue's own (colour, size, ...): map each to an exact-match keyword.
            "dynamic_templates": [
                {"attributes_as_keywords": {"path_match": "attributes.*", "mapping": {"type": "keyword"}}}
            ],
            "properties": {
                VECTOR_FIELD: vector_mapping(dimension, engine, m, ef_construction, mode, compression_level, encoder),
                "key": {"type": "keyword"},
                "uri": {"type": "keyword", "index": False},
                "content_hash": {"type": "keyword"},
                "label": {"type": "keyword"},
                "attributes": {"type": "object", "dynamic": True},
                "model_id": {"type": "keyword"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "indexed_at": {"type": "double"},
                **PRODUCT_MAPPING,
            },
        },
    }


# Shown, never searched: kept in _source only, so a title or a link adds nothing to the inverted index.
PRODUCT_MAPPING = {"product": {"type": "object", "enabled": False}}


def vector_mapping(
    dimension: int,
    engine: str,
    m: int,
    ef_construction: int,
    mode: str | None,
    compression_level: str | None,
    encoder: str | None,
) -> dict[str, Any]:
    parameters: dict[str, Any] = {"m": m, "ef_construction": ef_construction}
    if encoder is not None:
        parameters["encoder"] = ENCODERS[engine][encoder]
    mapping: dict[str, Any] = {
        "type": "knn_vector",
        "dimension": dimension,
        "method": {"name": "hnsw", "engine": engine, "space_type": "cosinesimil", "parameters": parameters},
    }
    if mode is not None:
        mapping["mode"] = mode
    if compression_level is not None:
        mapping["compression_level"] = compression_level
    return mapping


def storage_problem(engine: str, mode: str | None, compression_level: str | None, encoder: str | None) -> str | None:
    """Why these storage options cannot work, or None. The node checks the rest (lucene refuses 8x-32x, say)."""
    if mode is not None and mode not in MODES:
        return f"mode must be one of {MODES}, not {mode!r}"
    if compression_level is not None and compression_level not in COMPRESSION_LEVELS:
        return f"compression_level must be one of {COMPRESSION_LEVELS}, not {compression_level!r}"
    if encoder is not None and encoder not in ENCODERS.get(engine, {}):
        return f"encoder {encoder!r} does not exist for the {engine} engine; " + "; ".join(
            f"{name}: {', '.join(found)}" for name, found in ENCODERS.items()
        )
    if encoder is not None and compression_level is not None:
        return "give either encoder or compression_level, not both: the compression level chooses its own encoder"
    return None


def model_mismatch(
    meta: Mapping[str, Any], vector_mapping: Mapping[str, Any], *, model_id: str, dimension: int
) -> str | None:
    """Why an existing index's mapping cannot hold this model's vectors, or None when it can."""
    if "model_id" not in meta:
        return "was not created by visual-search (its mapping has no _meta.model_id); choose another index name"
    theirs = (meta["model_id"], meta.get("dimension") or vector_mapping.get("dimension"))
    if theirs == (model_id, dimension):
        return None
    return (
        f"holds vectors of model {theirs[0]!r} with dimension {theirs[1]}, not {model_id!r} with dimension "
        f"{dimension}: use another index name, or re-index into a new one"
    )


def checked_vectors(vectors: np.ndarray, dimension: int, *, rows: int, index_name: str) -> np.ndarray:
    """`vectors` as float32 (rows, dimension); ModelMismatchError for another width, InvalidRequestError otherwise."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise ModelMismatchError(
            f"vectors of shape {vectors.shape} do not fit index {index_name!r} of dimension {dimension}"
        )
    if vectors.shape[0] != rows:
        raise InvalidRequestError(f"{rows} records but {vectors.shape[0]} vectors")
    if not np.isfinite(vectors).all():
        raise InvalidRequestError("vectors contain NaN or infinity")
    return vectors


def rounded(vector: np.ndarray) -> list[float]:
    return np.round(np.asarray(vector).astype(np.float64), VECTOR_DECIMALS).tolist()


def document(
    record: ImageRecord, vector: np.ndarray, model_id: str, vector_fields: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The document of a record; `vector_fields` (centring.centred_fields) replace the k-NN vector when given."""
    return {
        "key": record.key,
        "uri": record.uri,
        "content_hash": record.content_hash,
        "label": record.label,
        "attributes": dict(record.attributes),
        "model_id": model_id,
        "width": record.width,
        "height": record.height,
        "indexed_at": record.indexed_at,
        **(vector_fields if vector_fields is not None else {VECTOR_FIELD: rounded(vector)}),
        # Only when there is some: an index made before product data (strict mapping, no `product`) still takes
        # documents of catalogues without it.
        **({"product": record.product.as_dict()} if not record.product.is_empty else {}),
    }


def record_from_source(source: Mapping[str, Any]) -> ImageRecord:
    return ImageRecord(
        key=source["key"],
        uri=source["uri"],
        content_hash=source["content_hash"],
        width=int(source["width"]),
        height=int(source["height"]),
        label=source.get("label"),
        attributes={name: str(value) for name, value in (source.get("attributes") or {}).items()},
        indexed_at=float(source.get("indexed_at") or 0.0),
        product=Product.from_dict(source.get("product")),
    )


def cosine_from_score(score: float) -> float:
    """Undo cosinesimil's ``(1 + cos) / 2``; clipped, since float rounding can step just outside [-1, 1]."""
    return float(min(1.0, max(-1.0, 2.0 * score - 1.0)))


def knn_query(
    vector: np.ndarray,
    k: int,
    *,
    engine: str,
    ef_search: int,
    filters: SearchFilters | None,
    exclude_keys: Sequence[str],
) -> dict[str, Any]:
    """A search body whose filters run *inside* the k-NN clause (efficient filtering), not after it.

    A post-filter would take the k nearest first and then drop non-matching ones, returning fewer than k
    for a selective filter; inside the clause the engine searches only matching documents (lucene switches
    to exact search when few match), so k hits come back whenever k documents match.
    """
    clause: dict[str, Any] = {"vector": vector.tolist(), "k": k}
    if engine == "lucene":
        # Lucene's HNSW explores max(k, ef_search) candidates; faiss/nmslib read the index setting instead.
        clause["method_parameters"] = {"ef_search": max(k, ef_search)}
    restriction = _filter_clause(filters, exclude_keys)
    if restriction:
        clause["filter"] = restriction
    return {
        "size": k,
        "query": {"knn": {VECTOR_FIELD: clause}},
        "_source": {"excludes": VECTOR_FIELDS},
    }


def _filter_clause(filters: SearchFilters | None, exclude_keys: Sequence[str]) -> dict[str, Any] | None:
    must: list[dict[str, Any]] = []
    if filters is not None and filters.labels:
        must.append({"terms": {"label": sorted(filters.labels)}})
    if filters is not None:
        for name, allowed in sorted(filters.attributes.items()):
            must.append({"terms": {f"attributes.{name}": sorted(allowed)}})
    must_not = [{"ids": {"values": list(exclude_keys)}}] if exclude_keys else []
    if not must and not must_not:
        return None
    return {"bool": {"filter": must, "must_not": must_not}}


def labels_aggregation(size: int = 10_000) -> dict[str, Any]:
    return {"size": 0, "track_total_hits": True, "aggs": {"labels": {"terms": {"field": "label", "size": size}}}}


def listing_query(
    filters: SearchFilters | None, offset: int, limit: int, *, after_key: str | None = None
) -> dict[str, Any]:
    """A page of records ordered by key (no vectors), with the exact number of matches: from `offset`, or right
    after `after_key` (search_after, for pages past the 10,000-hit window of from/size)."""
    restriction = _filter_clause(filters, ())
    body: dict[str, Any] = {
        "from": offset if after_key is None else 0,
        "size": limit,
        "track_total_hits": True,
        "sort": [{"key": "asc"}],
        "query": restriction or {"match_all": {}},
        "_source": {"excludes": VECTOR_FIELDS},
    }
    if after_key is not None:
        body["search_after"] = [after_key]
    return body


def key_scan_query(filters: SearchFilters | None, after_key: str | None, size: int) -> dict[str, Any]:
    """The next `size` keys (only) after `after_key` that the filters accept: walks to a deep page cheaply."""
    body: dict[str, Any] = {
        "size": size,
        "sort": [{"key": "asc"}],
        "_source": ["key"],
        "query": _filter_clause(filters, ()) or {"match_all": {}},
    }
    if after_key is not None:
        body["search_after"] = [after_key]
    return body


def vector_scan_query(after_key: str | None, size: int) -> dict[str, Any]:
    """The next `size` (key, vector) documents after `after_key` by key: a search_after scan, unbounded by the
    10,000-hit window that from/size has."""
    body: dict[str, Any] = {"size": size, "sort": [{"key": "asc"}], "_source": ["key", VECTOR_FIELD, RAW_FIELD]}
    if after_key is not None:
        body["search_after"] = [after_key]
    return body
