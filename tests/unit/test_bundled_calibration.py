"""A source checkout calibrates lite2-int8 on its own demo catalogue when no folder is set (what `make demo`,
bench/bench_pipeline.py and `--model lite2-int8` rely on). It broke silently once when bootstrap became a
package and the path counted one folder too few."""

from __future__ import annotations

from pathlib import Path

from visual_search import bootstrap

REPO = Path(__file__).resolve().parents[2]


def test_the_bundled_calibration_photos_are_the_checkouts_demo_catalogue():
    found = bootstrap._bundled_calibration_photos()
    assert found == REPO / "demo" / "catalogue" / "images"
    assert any(found.glob("*.jpg"))
