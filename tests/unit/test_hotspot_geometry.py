"""The geometry of services/hotspots.py: boxes found in a half of the photo map back to the photo, boxes cut by
the half's inner edge are recognised, and IoU is the usual intersection over union."""

from __future__ import annotations

import pytest

from visual_search.core.images import CropBox
from visual_search.services.hotspots import _gap, _place, _touches_inner_cut, iou

RIGHT_HALF = (0.5, 0.0, 0.5, 1.0)


def test_a_box_of_the_right_half_is_placed_in_the_right_half_of_the_photo():
    placed = _place(CropBox(0.2, 0.1, 0.6, 0.5), RIGHT_HALF)
    assert (placed.x, placed.y, placed.w, placed.h) == pytest.approx((0.6, 0.1, 0.3, 0.5))


def test_only_a_box_reaching_the_inner_cut_touches_it():
    assert _touches_inner_cut(CropBox(0.5, 0.2, 0.2, 0.3), RIGHT_HALF)  # starts at the cut (x = 0.5)
    assert not _touches_inner_cut(CropBox(0.6, 0.0, 0.4, 1.0), RIGHT_HALF)  # the photo's own edges do not count
    assert not _touches_inner_cut(CropBox(0.1, 0.1, 0.8, 0.8), (0.0, 0.0, 1.0, 1.0))


def test_iou_and_gap():
    a, b = CropBox(0.0, 0.0, 0.5, 0.5), CropBox(0.25, 0.0, 0.5, 0.5)
    assert iou(a, a) == pytest.approx(1.0)
    assert iou(a, b) == pytest.approx(0.125 / 0.375)
    assert iou(a, CropBox(0.6, 0.6, 0.1, 0.1)) == 0.0
    assert _gap(a, b) == 0.0 and _gap(a, CropBox(0.7, 0.0, 0.1, 0.1)) == pytest.approx(0.2)
