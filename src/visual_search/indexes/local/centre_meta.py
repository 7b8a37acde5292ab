"""How an embedded index keeps its query-domain centre: three rows of its SQLite `meta` table, committed with
the rest, so every process that opens the index (or follows its commits) projects with the same centre."""

from __future__ import annotations

from collections.abc import Mapping

from visual_search.core.centre import Centre

_DECODED: dict[str, Centre] = {}  # "centre id/photos" -> decoded centre: a follower re-reads meta on every commit


def centre_of_meta(meta: Mapping[str, str]) -> Centre | None:
    """The centre the index's vectors are searched with, or None (older indexes have no such rows)."""
    centre_id = meta.get("centre_id", "")
    if not centre_id:
        return None
    photos = int(meta.get("centre_photos", "0"))
    known = _DECODED.get(f"{centre_id}/{photos}")
    if known is None:
        known = Centre.decoded(meta["centre"], photos)
        if len(_DECODED) > 16:
            _DECODED.clear()
        _DECODED[f"{centre_id}/{photos}"] = known
    return known


def centre_meta(centre: Centre | None) -> dict[str, str]:
    """The meta rows that record `centre` (empty values for none)."""
    if centre is None:
        return {"centre": "", "centre_id": "", "centre_photos": "0"}
    return {"centre": centre.encoded(), "centre_id": centre.centre_id, "centre_photos": str(centre.photos)}
