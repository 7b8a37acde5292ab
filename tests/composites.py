"""Photos of several items, made from the fixture photos: what the hotspot tests search with."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from visual_search.core.images import CropBox

PHOTOS = Path(__file__).resolve().parent / "fixtures" / "photos"


def side_by_side(left: str, right: str) -> tuple[bytes, list[CropBox]]:
    """Two fixture photos pasted on a plain beige background (JPEG bytes), and where each one is (fractions)."""
    canvas = Image.new("RGB", (1000, 600), (228, 222, 212))
    boxes = []
    for slot, name in enumerate((left, right)):
        with Image.open(PHOTOS / name) as photo:
            item = photo.convert("RGB")
        item.thumbnail((400, 520))
        x, y = 50 + slot * 500, (600 - item.height) // 2
        canvas.paste(item, (x, y))
        boxes.append(CropBox(x / 1000, y / 600, item.width / 1000, item.height / 600))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), boxes
