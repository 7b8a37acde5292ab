"""`visual-search adapt` and `eval --adapt` on real photos with the real model (issue 20): the centre is fitted on
shopper-like photos, stored with the index, changes searches, and comes off again exactly; bad input is a clear
message and a non-zero exit."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from visual_search.cli.main import main
from visual_search.core.images import decode_image
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.shopper_sim import shopper_queries

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "catalogue"


@pytest.fixture(scope="module")
def demo_rows() -> list[dict]:
    with open(DEMO / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["label"] in ("Shoes", "Dress", "Pants", "T-Shirt")]
    return rows


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory, demo_rows) -> Path:
    """24 demo photos (6 of four labels) and their labels CSV."""
    folder = tmp_path_factory.mktemp("catalogue")
    (folder / "images").mkdir()
    chosen = []
    for label in ("Shoes", "Dress", "Pants", "T-Shirt"):
        chosen += [row for row in demo_rows if row["label"] == label][:6]
    for row in chosen:
        shutil.copy(DEMO / row["path"], folder / row["path"])
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(chosen)
    return folder


@pytest.fixture(scope="module")
def shopper_photos(tmp_path_factory, demo_rows) -> Path:
    """10 synthetic shopper photos of demo items that are not in the catalogue."""
    folder = tmp_path_factory.mktemp("shoppers")
    others = [DEMO / row["path"] for row in demo_rows[-10:]]
    made = shopper_queries(10, len(others), lambda i: decode_image(others[i].read_bytes()).image, seed=3)
    for n, query in enumerate(made):
        (folder / f"shopper-{n}.jpg").write_bytes(query.jpeg)
    return folder


@pytest.fixture
def index_dir(catalogue, tmp_path) -> Path:
    directory = tmp_path / "index"
    command = ["index", str(catalogue / "images"), "--labels", str(catalogue / "labels.csv")]
    assert main(command + ["--index-dir", str(directory), "--quiet"]) == 0
    return directory


def search(index_dir: Path, photo: Path, capsys) -> list:
    capsys.readouterr()
    assert main(["search", str(photo), "-k", "24", "--json", "--index-dir", str(index_dir)]) == 0
    return json.loads(capsys.readouterr().out)["results"]


def test_adapt_fits_stores_and_clears_the_centre_and_clearing_gives_todays_results_back(
    index_dir, shopper_photos, capsys
):
    query = sorted(shopper_photos.glob("*.jpg"))[0]
    before = search(index_dir, query, capsys)
    assert main(["adapt", str(shopper_photos), "--index-dir", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert "fitted the query-domain centre on 10 photos" in out and "moved" in out
    assert main(["stats", "--json", "--index-dir", str(index_dir)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["centre"]["photos"] == 10 and stats["count"] == 24
    adapted = search(index_dir, query, capsys)
    assert [(r["key"], r["score"]) for r in adapted] != [(r["key"], r["score"]) for r in before]
    with LocalIndex(index_dir) as index:
        assert index.space_id.endswith("+centre-" + stats["centre"]["centre_id"])
    assert main(["adapt", "--clear", "--index-dir", str(index_dir)]) == 0
    assert "removed the query-domain centre" in capsys.readouterr().out
    assert search(index_dir, query, capsys) == before


def test_adapt_reads_a_csv_with_a_path_column_and_skips_what_it_cannot_decode(
    index_dir, shopper_photos, tmp_path, capsys
):
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    listing = tmp_path / "shoppers.csv"
    photos = sorted(shopper_photos.glob("*.jpg"))[:4]
    listing.write_text("path\n" + "".join(f"{p}\n" for p in photos) + "broken.jpg\n")
    capsys.readouterr()
    assert main(["adapt", str(listing), "--index-dir", str(index_dir), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["photos_used"] == 4 and summary["skipped"] == 1 and summary["moved"] > 0
    assert "skipped" in captured.err and "broken.jpg" in captured.err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: [str(d / "missing")], "does not exist"),
        (lambda d: [str((d / "notes.txt").resolve())], "neither a folder"),
        (lambda d: [str(d / "empty")], "no image files"),
        (lambda d: [str(d / "nopath.csv")], "'path' column"),
        (lambda d: [str(d / "only-broken")], "none of the photos"),
        (lambda d: [], "give the photos"),
    ],
)
def test_bad_input_to_adapt_is_a_clear_message_and_leaves_the_index_alone(index_dir, tmp_path, capsys, make, message):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-broken").mkdir()
    (tmp_path / "only-broken" / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "nopath.csv").write_text("file\na.jpg\n")
    capsys.readouterr()
    assert main(["adapt", *make(tmp_path), "--index-dir", str(index_dir)]) == 1
    assert message in capsys.readouterr().err
    with LocalIndex(index_dir) as index:
        assert index.centre is None and index.count() == 24


def test_adapt_waits_for_no_writer_it_is_refused_while_another_holds_the_index(index_dir, shopper_photos, capsys):
    with LocalIndex(index_dir, writable=True):
        assert main(["adapt", str(shopper_photos), "--index-dir", str(index_dir)]) == 1
    assert "is being written by" in capsys.readouterr().err


def test_eval_adapt_reports_without_and_with_the_centre(catalogue, shopper_photos, capsys):
    capsys.readouterr()
    command = ["eval", "--gallery", str(catalogue / "labels.csv"), "--adapt", str(shopper_photos), "--json"]
    assert main(command) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["queries"] == 24 and scores["adapted"]["queries"] == 24 and scores["adapted_on_photos"] == 10
    assert set(scores["adapted"]) == {"recall@1", "recall@k", "k", "map", "queries"} and len(scores["centre_id"]) == 12


def test_eval_adapt_refuses_photos_that_are_evaluation_queries(catalogue, capsys):
    query = catalogue / "images" / sorted(p.name for p in (catalogue / "images").glob("*.jpg"))[0]
    capsys.readouterr()
    assert main(["eval", "--gallery", str(catalogue / "labels.csv"), "--adapt", str(query)]) == 1
    assert "is one of the evaluation queries" in capsys.readouterr().err


def test_the_simulated_adaptation_set_shows_only_items_no_query_shows(catalogue):
    from visual_search.cli.evaluate import _simulated_adaptation
    from visual_search.core.catalogue_csv import read_catalogue_csv

    gallery = read_catalogue_csv(catalogue / "labels.csv")
    made = _simulated_adaptation(4, gallery, set(range(20)), seed=1)
    assert len(made) == 4
    assert all(any(str(entry.path) in photo.name for entry in gallery[20:]) for photo in made)
    assert not any(str(entry.path) + " " in photo.name + " " for entry in gallery[:20] for photo in made)


def test_eval_shopper_sim_with_a_disjoint_simulated_adaptation_set(catalogue, capsys):
    capsys.readouterr()
    command = ["eval", "--gallery", str(catalogue / "labels.csv"), "--shopper-sim", "12", "--adapt-sim", "8"]
    assert main([*command, "--seed", "4", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["queries"] == 12 and scores["adapted"]["queries"] == 12 and scores["adapted_on_photos"] == 8
    assert main([*command[:-2], "--adapt-sim", "1"]) == 0  # needs no --seed
    capsys.readouterr()
    assert main(["eval", "--gallery", str(catalogue / "labels.csv"), "--adapt-sim", "3"]) == 1
    assert "--adapt-sim M needs --shopper-sim" in capsys.readouterr().err
