"""The `visual-search` commands on real photos with the real model: index with labels, stats, search, remove, eval."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from visual_search.cli.main import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "catalogue"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    """36 demo photos of three labels, with a labels CSV whose extra column becomes an attribute."""
    folder = tmp_path_factory.mktemp("catalogue")
    (folder / "images").mkdir()
    with open(DEMO / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["label"] in ("Shoes", "Dress", "Pants")]
    chosen: list[dict] = []
    for label in ("Shoes", "Dress", "Pants"):
        chosen += [row for row in rows if row["label"] == label][:12]
    for row in chosen:
        shutil.copy(DEMO / row["path"], folder / row["path"])
    with open(folder / "labels.csv", "w", newline="") as handle:
        # The demo CSV also has product columns (title, price, ...); this catalogue needs only these.
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "kids"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(chosen)
    return folder


@pytest.fixture(scope="module")
def index_dir(catalogue, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("index")
    command = [
        "index",
        str(catalogue / "images"),
        "--labels",
        str(catalogue / "labels.csv"),
        "--index-dir",
        str(directory),
    ]
    assert main(command + ["--quiet"]) == 0
    return directory


def test_stats_reports_counts_per_label_and_the_model(index_dir, capsys):
    capsys.readouterr()
    assert main(["stats", "--index-dir", str(index_dir), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["count"] == 36 and stats["labels"] == {"Shoes": 12, "Dress": 12, "Pants": 12}
    assert (
        stats["model"].startswith("efficientnet-lite2-fp32") and stats["dimension"] == 1280 + 52
    )  # appearance + colour


def test_search_json_prints_one_object_per_query_with_descending_scores(catalogue, index_dir, capsys):
    photos = sorted((catalogue / "images").glob("*.jpg"))[:2]
    capsys.readouterr()
    assert main(["search", *map(str, photos), "--index-dir", str(index_dir), "-k", "5", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == [str(p) for p in photos]
    for line, photo in zip(lines, photos):
        scores = [result["score"] for result in line["results"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)
        assert line["results"][0]["key"] == photo.name and scores[0] > 0.999


def test_search_with_a_label_returns_only_that_label(catalogue, index_dir, capsys):
    shoe = next(p for p in sorted((catalogue / "images").glob("*.jpg")))
    capsys.readouterr()
    assert main(["search", str(shoe), "--index-dir", str(index_dir), "-k", "20", "--label", "Dress", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert len(results) == 12 and {result["label"] for result in results} == {"Dress"}


def test_search_colour_reranks_by_colour_and_keeps_the_same_photo_first(catalogue, index_dir, capsys):
    photo = sorted((catalogue / "images").glob("*.jpg"))[3]
    rankings = {}
    for weight in ("0", "1"):
        capsys.readouterr()
        command = ["search", str(photo), "--index-dir", str(index_dir), "-k", "36", "--json", "--colour", weight]
        assert main(command) == 0
        rankings[weight] = [result["key"] for result in json.loads(capsys.readouterr().out)["results"]]
    assert rankings["0"][0] == rankings["1"][0] == photo.name  # the same photo matches in appearance and colour
    assert rankings["0"] != rankings["1"]  # colour moved some garments


def test_search_colour_outside_0_to_1_is_a_clear_error(catalogue, index_dir, capsys):
    photo = sorted((catalogue / "images").glob("*.jpg"))[0]
    capsys.readouterr()
    assert main(["search", str(photo), "--index-dir", str(index_dir), "--colour", "3"]) == 1
    assert "colour must be a number from 0 to 1" in capsys.readouterr().err


def test_remove_deletes_keys_and_reindexing_restores_only_them(catalogue, index_dir, capsys):
    victim = sorted((catalogue / "images").glob("*.jpg"))[0].name
    assert main(["remove", victim, "no-such-key.jpg", "--index-dir", str(index_dir)]) == 0
    assert "removed 1 of 2" in capsys.readouterr().err
    assert main(["remove", "no-such-key.jpg", "--index-dir", str(index_dir)]) == 1
    command = [
        "index",
        str(catalogue / "images"),
        "--labels",
        str(catalogue / "labels.csv"),
        "--index-dir",
        str(index_dir),
    ]
    capsys.readouterr()
    assert main(command + ["--quiet"]) == 0
    assert "indexed 1, unchanged 35, failed 0" in capsys.readouterr().err


def test_eval_reports_recall_and_map_as_json(catalogue, capsys):
    capsys.readouterr()
    assert main(["eval", "--gallery", str(catalogue / "labels.csv"), "-k", "5", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["queries"] == 36
    assert set(scores) >= {"recall@1", "recall@k", "map", "queries"}
    # Shoes, dresses and trousers look nothing alike: a working model separates them well.
    assert scores["recall@1"] >= 0.8 and scores["map"] >= 0.6 and 0 <= scores["map"] <= scores["recall@k"] <= 1


def test_eval_with_a_queries_csv_uses_them_against_the_gallery(catalogue, tmp_path, capsys):
    rows = list(csv.DictReader(open(catalogue / "labels.csv", newline="")))
    queries = tmp_path / "queries.csv"
    with open(queries, "w", newline="") as handle:
        handle.write("path,label\n" + "".join(f"{catalogue / r['path']},{r['label']}\n" for r in rows[::6]))
    capsys.readouterr()
    assert main(["eval", "--gallery", str(catalogue / "labels.csv"), "--queries", str(queries), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["queries"] == 6 and scores["recall@1"] == 1.0  # each query is in the gallery itself


def test_eval_shopper_sim_scores_exact_items_deterministically(catalogue, capsys):
    command = ["eval", "--gallery", str(catalogue / "labels.csv"), "--shopper-sim", "12", "--seed", "5", "--json"]
    answers = []
    for _ in range(2):
        capsys.readouterr()
        assert main(command) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0] == answers[1]  # same seed, same queries, same scores
    scores = answers[0]
    assert scores["benchmark"] == "shopper-sim (seed 5)" and scores["queries"] == 12
    # 36 garments of three kinds: by chance recall@1 of the exact item would be 1/36.
    assert scores["recall@1"] >= 0.5 and 0 <= scores["map"] <= scores["recall@k"] <= 1


def test_eval_colour_zero_is_the_appearance_score_and_colour_changes_it(catalogue, capsys):
    results = {}
    for weight in ("0", "1"):
        capsys.readouterr()
        assert main(["eval", "--gallery", str(catalogue / "labels.csv"), "--colour", weight, "--json"]) == 0
        results[weight] = json.loads(capsys.readouterr().out)
    assert results["0"]["colour"] == 0 and results["1"]["colour"] == 1
    assert results["0"]["map"] != results["1"]["map"]
    capsys.readouterr()
    assert main(["eval", "--gallery", str(catalogue / "labels.csv"), "--shopper-sim", "0"]) == 1
    assert "--shopper-sim needs" in capsys.readouterr().err


def test_a_labels_csv_without_a_path_column_is_a_clear_error(catalogue, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\na.jpg,Shoes\n")
    assert main(["index", str(catalogue / "images"), "--labels", str(bad), "--index-dir", str(tmp_path / "i")]) == 1
    assert "'path' column" in capsys.readouterr().err


def test_two_sources_with_one_key_keep_the_first_and_report_the_second(catalogue, tmp_path, capsys):
    photo = sorted((catalogue / "images").glob("*.jpg"))[0]
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(sorted((catalogue / "images").glob("*.jpg"))[1], other / photo.name)
    index_dir = tmp_path / "index"
    capsys.readouterr()
    assert main(["index", str(photo), str(other / photo.name), "--index-dir", str(index_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"skipped {other / photo.name}: same key" in err and "indexed 1," in err


def test_remove_needs_no_model(index_dir, capsys):
    """Deleting keys never loads (or builds) a model, so it works whatever model made the index."""
    capsys.readouterr()
    assert main(["remove", "no-such-key.jpg", "--index-dir", str(index_dir), "--model", "/no/such/model.json"]) == 1
    assert "removed 0 of 1" in capsys.readouterr().err


def test_eval_of_a_gallery_with_no_readable_image_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    (tmp_path / "gallery.csv").write_text("path,label\nbroken.jpg,Shoes\n")
    assert main(["eval", "--gallery", str(tmp_path / "gallery.csv"), "--json"]) == 1
    err = capsys.readouterr().err
    assert "could be embedded" in err and "Traceback" not in err
