"""The near-duplicate report as one self-contained HTML page: each group's thumbnails side by side, with keys
and scores. Thumbnails are embedded (data: URLs), so the page can be mailed or opened offline.

A page meant to be mailed must hold only catalogue images: a thumbnail is made from the bytes that
`read_indexed_file` checked (inside the catalogue folder, a regular file, the indexed content hash), as
`GET /images` serves them; a file since replaced (by a link to a private photo, say) gets a placeholder."""

from __future__ import annotations

import base64
import html
import io

from visual_search.core.errors import VisualSearchError
from visual_search.core.images import decode_image
from visual_search.core.records import ImageRecord
from visual_search.services.duplicates import DuplicateReport
from visual_search.stores.local_folder import read_indexed_file

THUMBNAIL_PX = 180

_STYLE = """
body{font:14px system-ui,sans-serif;margin:2rem;color:#1f2937}
h1{font-size:1.4rem}.group{border:1px solid #e5e7eb;border-radius:10px;padding:1rem;margin:1rem 0}
.members{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;width:180px}
img,.missing{width:180px;height:180px;object-fit:contain;background:#f3f4f6;border-radius:6px}
.missing{display:flex;align-items:center;justify-content:center;color:#6b7280}
figcaption{word-break:break-all;font-size:12px;margin-top:.3rem}.score{color:#4f46e5;font-weight:600}
"""


def render_report(report: DuplicateReport, *, follow_links_outside: bool = False) -> str:
    groups = "\n".join(_group(number, group, follow_links_outside) for number, group in enumerate(report.groups, 1))
    summary = (
        f"{len(report.groups)} groups among {report.images_scanned} images (cosine similarity &ge; {report.threshold})"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Near-duplicate report</title>'
        f"<style>{_STYLE}</style></head><body><h1>Near-duplicate report</h1><p>{summary}</p>"
        f"{groups or '<p>No near-duplicates found.</p>'}</body></html>\n"
    )


def _group(number: int, group, follow_links_outside: bool) -> str:
    figures = "".join(
        f"<figure>{_thumbnail(member.record, follow_links_outside)}<figcaption>"
        f'<span class="score">{member.score:.4f}</span> {html.escape(member.record.key)}</figcaption></figure>'
        for member in group.members
    )
    return f'<section class="group"><h2>Group {number}</h2><div class="members">{figures}</div></section>'


def _thumbnail(record: ImageRecord, follow_links_outside: bool) -> str:
    """An embedded JPEG thumbnail of a record's checked local file; a labelled placeholder for images not on this
    machine (S3) and for files that are no longer the ones indexed."""
    try:
        decoded = decode_image(
            read_indexed_file(record, follow_links_outside=follow_links_outside), min_size_px=THUMBNAIL_PX
        )
    except (OSError, VisualSearchError):
        return f'<div class="missing" title="{html.escape(record.uri)}">no local file, or not the one indexed</div>'
    key = record.key
    image = decoded.image.copy()
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    data = base64.b64encode(out.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(key)}" src="data:image/jpeg;base64,{data}">'
