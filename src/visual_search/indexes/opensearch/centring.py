"""The query-domain centre of an OpenSearch index (core/centre.py): kept in the mapping's `_meta`, applied by the
library to every vector it writes and every query, and re-applied to the whole index by a bulk rewrite.

Without a centre a document is exactly what it always was. With one, the k-NN field holds the projected vector,
`raw_vector` (binary: stored in _source, never indexed) the embedder's own, and `centre_id` which centre made
the projection, so a refit rewrites from the raw vectors (no image is re-embedded) and finds what is stale.

Races. The refit rewrites each stale document with optimistic concurrency (`if_seq_no`/`if_primary_term`), so
a document a writer replaced meanwhile is not clobbered with an older raw vector: it is found stale again by
the next pass (or is current already). A writer re-reads the centre after each bulk write and rewrites its own
documents when the centre changed under it; since the refit publishes the new centre before its first pass,
either the writer sees the new centre or its write landed before the refit's first scan began.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from visual_search.core.centre import Centre
from visual_search.core.errors import BackendUnavailableError, InvalidRequestError
from visual_search.indexes.opensearch import documents as docs
from visual_search.indexes.opensearch.session import OpenSearchSession

RAW_FIELD, CENTRE_FIELD = docs.RAW_FIELD, docs.CENTRE_FIELD
CENTRE_MAPPING = {RAW_FIELD: {"type": "binary"}, CENTRE_FIELD: {"type": "keyword"}}
_META_KEYS = ("centre", "centre_id", "centre_photos")
_SCAN_PAGE = 500
_UNCENTRE = (
    f"ctx._source['{docs.VECTOR_FIELD}'] = params['{docs.VECTOR_FIELD}']; "
    f"ctx._source.remove('{docs.RAW_FIELD}'); ctx._source.remove('{docs.CENTRE_FIELD}');"
)
_MAX_PASSES = 20


def encode_raw(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_raw(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def centre_of_meta(meta: Mapping[str, Any] | None) -> Centre | None:
    if not meta or not meta.get("centre_id"):
        return None
    return Centre.decoded(meta["centre"], int(meta.get("centre_photos") or 0))


def raw_vector_of(source: Mapping[str, Any]) -> np.ndarray:
    """The embedder's vector of a document: `raw_vector` when it was projected, else the k-NN vector itself."""
    if source.get(RAW_FIELD):
        return decode_raw(source[RAW_FIELD])
    return np.asarray(source[docs.VECTOR_FIELD], dtype=np.float32)


def centred_fields(raw: np.ndarray, projected: np.ndarray, centre: Centre | None) -> dict[str, Any]:
    """The fields a document of this raw vector gets under `centre` (today's document without one)."""
    fields: dict[str, Any] = {docs.VECTOR_FIELD: docs.rounded(projected)}
    if centre is not None:
        fields[RAW_FIELD] = encode_raw(raw)
        fields[CENTRE_FIELD] = centre.centre_id
    return fields


def publish_centre(session: OpenSearchSession, index_name: str, meta: Mapping[str, Any], centre: Centre | None) -> None:
    """Record `centre` in `_meta` (which put_mapping replaces whole: the other keys are written back) and map the
    fields projected documents need (adding fields to a live index is allowed and idempotent)."""
    new_meta = {name: value for name, value in meta.items() if name not in _META_KEYS}
    if centre is not None:
        new_meta.update({"centre": centre.encoded(), "centre_id": centre.centre_id, "centre_photos": centre.photos})
    session.call(
        lambda client: client.indices.put_mapping(
            index=index_name, body={"_meta": new_meta, "properties": CENTRE_MAPPING}
        ),
        what=f"record the query-domain centre of {index_name!r}",
    )


def rewrite_stale(session: OpenSearchSession, index_name: str, centre: Centre | None, project) -> int:
    """Re-project every document not made with `centre`, from its raw vector; returns how many were rewritten.

    Passes repeat (each after a refresh) until one finds nothing stale: conflicts with concurrent writers are
    simply left for the next pass. `project(raw rows) -> projected rows` applies `centre`."""
    rewritten = 0
    for _ in range(_MAX_PASSES):
        session.call(lambda client: client.indices.refresh(index=index_name), what=f"refresh {index_name!r}")
        found, written = _one_pass(session, index_name, centre, project)
        rewritten += written
        if not found:
            return rewritten
        time.sleep(0.05)
    raise BackendUnavailableError(
        f"documents of {index_name!r} kept changing during {_MAX_PASSES} passes of re-projection; run it again"
    )


def _stale_query(centre: Centre | None) -> dict[str, Any]:
    if centre is None:
        return {"exists": {"field": CENTRE_FIELD}}
    return {"bool": {"must_not": [{"term": {CENTRE_FIELD: centre.centre_id}}]}}


def _one_pass(session: OpenSearchSession, index_name: str, centre: Centre | None, project) -> tuple[int, int]:
    after: str | None = None
    found = written = 0
    while True:
        body: dict[str, Any] = {
            "size": _SCAN_PAGE,
            "sort": [{"key": "asc"}],
            "query": _stale_query(centre),
            "seq_no_primary_term": True,
            "_source": ["key", docs.VECTOR_FIELD, RAW_FIELD, CENTRE_FIELD],
        }
        if after is not None:
            body["search_after"] = [after]
        hits = session.call(functools.partial(_search, index=index_name, body=body), what="find stale vectors")["hits"][
            "hits"
        ]
        if not hits:
            return found, written
        after = hits[-1]["_source"]["key"]
        found += len(hits)
        raw = np.stack([raw_vector_of(hit["_source"]) for hit in hits])
        projected = project(raw)
        lines: list[dict[str, Any]] = []
        for hit, raw_row, row in zip(hits, raw, projected, strict=True):
            fields = centred_fields(raw_row, row, centre)
            # Without a centre the document becomes today's again: its raw vector back in the k-NN field, the
            # centre's fields removed (not set to null).
            change: dict[str, Any] = {"doc": fields}
            if centre is None:
                change = {"script": {"source": _UNCENTRE, "lang": "painless", "params": fields}}
            lines += [
                {"update": {"_id": hit["_id"], "if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}},
                change,
            ]
        answer = session.call(functools.partial(_bulk, index=index_name, body=lines), what="rewrite projected vectors")
        for item in answer["items"]:
            status = item["update"].get("status", 200)
            if status < 300:
                written += 1
            elif status not in (404, 409, 429):  # gone, changed meanwhile, busy: the next pass decides
                raise InvalidRequestError(f"OpenSearch refused to rewrite a vector: {item['update'].get('error')}")


def _search(client, *, index: str, body: dict[str, Any]) -> dict[str, Any]:
    return client.search(index=index, body=body)


def _bulk(client, *, index: str, body: list[dict[str, Any]]) -> dict[str, Any]:
    return client.bulk(body=body, index=index)
