"""Product data from a catalogue CSV reaches the index through `visual-search index` and comes back in every
API result; a malformed product link refuses the catalogue before anything is indexed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from visual_search.cli.main import main
from visual_search.core.settings import Settings
from visual_search.server.app import create_app

DEMO = Path(__file__).resolve().parents[2] / "demo" / "catalogue" / "images"
PHOTOS = ["e3348ff1.jpg", "0090ca2c.jpg"]


def catalogue(tmp_path: Path, second_url: str) -> Path:
    (tmp_path / "images").mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(DEMO / name, tmp_path / "images" / name)
    (tmp_path / "labels.csv").write_text(
        "path,label,title,price,currency,product_url,brand,fit\n"
        f"images/{PHOTOS[0]},Blazer,Linen blazer,129.00,EUR,https://shop.example/p/linen-blazer,Fenwick,slim\n"
        f"images/{PHOTOS[1]},Shoes,Suede loafer,89.50,EUR,{second_url},Fenwick,\n",
        encoding="utf-8",
    )
    return tmp_path


def index(folder: Path, index_dir: Path) -> int:
    return main(
        [
            "index",
            str(folder / "images"),
            "--labels",
            str(folder / "labels.csv"),
            "--index-dir",
            str(index_dir),
            "--quiet",
        ]
    )


def test_indexed_product_data_is_in_every_search_result(tmp_path):
    folder = catalogue(tmp_path / "catalogue", "https://shop.example/p/suede-loafer")
    index_dir = tmp_path / "index"
    assert index(folder, index_dir) == 0
    with TestClient(create_app(Settings(index=str(index_dir)))) as client:
        results = client.post("/search", json={"key": PHOTOS[1], "k": 5}).json()["results"]
    blazer = next(result for result in results if result["key"] == PHOTOS[0])
    assert blazer | {"score": None} == {
        "key": PHOTOS[0],
        "score": None,
        "url": f"/images/{PHOTOS[0]}",
        "label": "Blazer",
        "width": blazer["width"],
        "height": blazer["height"],
        "attributes": {"fit": "slim"},
        "title": "Linen blazer",
        "price": 129.0,
        "currency": "EUR",
        "product_url": "https://shop.example/p/linen-blazer",
        "brand": "Fenwick",
    }


def test_changing_only_the_price_reindexes_the_record(tmp_path):
    folder = catalogue(tmp_path / "catalogue", "https://shop.example/p/suede-loafer")
    index_dir = tmp_path / "index"
    assert index(folder, index_dir) == 0
    labels = folder / "labels.csv"
    labels.write_text(labels.read_text().replace("89.50", "59.00"), encoding="utf-8")
    assert index(folder, index_dir) == 0
    with TestClient(create_app(Settings(index=str(index_dir)))) as client:
        results = client.post("/search", json={"key": PHOTOS[0], "k": 1}).json()["results"]
    assert results[0]["key"] == PHOTOS[1] and results[0]["price"] == 59.0


@pytest.mark.parametrize("bad_url", ["javascript:alert(1)", "shop.example/p/loafer", "https://shop.example/a b"])
def test_a_malformed_product_url_refuses_the_catalogue_and_keeps_the_index(tmp_path, capsys, bad_url):
    good = catalogue(tmp_path / "good", "https://shop.example/p/suede-loafer")
    index_dir = tmp_path / "index"
    assert index(good, index_dir) == 0
    before = (index_dir / "index.sqlite3").stat().st_mtime_ns
    bad = catalogue(tmp_path / "bad", bad_url)
    capsys.readouterr()
    assert index(bad, index_dir) != 0
    message = capsys.readouterr().err
    assert "line 3" in message and "product_url" in message
    assert (index_dir / "index.sqlite3").stat().st_mtime_ns == before
    with TestClient(create_app(Settings(index=str(index_dir)))) as client:
        results = client.post("/search", json={"key": PHOTOS[0], "k": 1}).json()["results"]
    assert results[0]["product_url"] == "https://shop.example/p/suede-loafer"
