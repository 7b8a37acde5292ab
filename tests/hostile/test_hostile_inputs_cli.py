"""Every hostile file through the real CLI, as a subprocess with the real model:

- `visual-search search FILE`: exit 0 with results for a good image; exit 1 with "<path>: <reason>" on stderr
  for a bad one; never a stack trace; the index unchanged.
- `visual-search index DIR` over a folder mixing good and bad files: each bad file is reported with its path
  and reason, every good one is indexed, exit 0. A folder of only bad files: a non-zero exit.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cli_runner import needs_local_model, run_cli
from corpus import FILE_CASES, demo_photo_paths
from fakes import indexed_keys
from hostile_support import IndexSnapshot

from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.indexes.local.index import LocalIndex

pytestmark = [needs_local_model, pytest.mark.timeout(300)]

CLI_INDEXED_PHOTOS = 8
BAD_CASES = [case for case in FILE_CASES if not case.expected.ok]
GOOD_CASES = [case for case in FILE_CASES if case.expected.ok]


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory) -> Path:
    """An index of a few demo photos made by `visual-search index` itself (the real model)."""
    directory = tmp_path_factory.mktemp("cli-index") / "index"
    photos = demo_photo_paths()[:CLI_INDEXED_PHOTOS]
    result = run_cli("index", *map(str, photos), "--index-dir", str(directory), "--quiet")
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for case in FILE_CASES:
        (folder / case.filename).write_bytes(case.data)
    return folder


def test_search_of_each_bad_file_exits_1_with_its_path_and_reason(cli_index, corpus_dir):
    """One subprocess per bad file, so each gets its own exit status (two at a time: most of each is start-up)."""
    before = IndexSnapshot.of(cli_index)

    def search(case):
        return run_cli("search", str(corpus_dir / case.filename), "--index-dir", str(cli_index), "-k", "3", "--json")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(search, BAD_CASES))
    wrong = []
    for case, result in zip(BAD_CASES, results):
        path = corpus_dir / case.filename
        last_line = (result.stderr.strip().splitlines() or [""])[-1]
        reason = last_line.split(f"{path}: ", 1)[-1] if f"{path}: " in last_line else ""
        if result.returncode != 1 or result.stdout.strip() or len(reason) < 10:
            wrong.append(
                f"{case.name}: exit {result.returncode}, stdout {result.stdout[:200]!r}, "
                f"stderr {result.stderr[-300:]!r}"
            )
    assert not wrong, "\n".join(wrong)
    assert IndexSnapshot.of(cli_index) == before, "a search changed the index"


def test_search_of_every_good_file_exits_0_with_k_results_each(cli_index, corpus_dir):
    paths = [str(corpus_dir / case.filename) for case in GOOD_CASES]
    result = run_cli("search", *paths, "--index-dir", str(cli_index), "-k", "3", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [line["query"] for line in lines] == paths
    assert all(len(line["results"]) == 3 for line in lines)
    assert all(-1.0 <= hit["score"] <= 1.0001 for line in lines for hit in line["results"])


def test_search_with_several_files_reports_each_bad_one_and_answers_the_good_ones(cli_index, corpus_dir):
    paths = [corpus_dir / case.filename for case in FILE_CASES]
    result = run_cli("search", *map(str, paths), "--index-dir", str(cli_index), "-k", "2", "--json")
    assert result.returncode == 1  # some failed
    answered = [json.loads(line)["query"] for line in result.stdout.splitlines() if line.strip()]
    assert answered == [str(corpus_dir / case.filename) for case in GOOD_CASES]
    for case in BAD_CASES:
        assert f"{corpus_dir / case.filename}: " in result.stderr, case.name


def test_search_refuses_a_bad_k_with_a_message(cli_index):
    def search(k):
        return run_cli("search", str(demo_photo_paths()[0]), "--index-dir", str(cli_index), "-k", k)

    bad_ks = ["0", "101", "-1", "a", "2.5", "", "true"]
    with ThreadPoolExecutor(3) as pool:
        results = dict(zip(bad_ks, pool.map(search, bad_ks)))
    for k, result in results.items():
        assert result.returncode != 0 and not result.stdout.strip(), k
        assert "k" in result.stderr and result.stderr.strip(), k


@pytest.mark.parametrize("target", ["missing.jpg", "a-folder"])
def test_search_of_a_missing_file_or_a_folder_is_reported(target, cli_index, tmp_path):
    (tmp_path / "a-folder").mkdir()
    result = run_cli("search", str(tmp_path / target), "--index-dir", str(cli_index))
    assert result.returncode == 1 and str(tmp_path / target) in result.stderr


def test_search_of_a_missing_index_is_a_clear_error(tmp_path):
    result = run_cli("search", str(demo_photo_paths()[0]), "--index-dir", str(tmp_path / "no-index"))
    assert result.returncode == 1 and "no index" in result.stderr.lower()


def test_indexing_a_mixed_folder_reports_bad_files_and_indexes_the_good_ones(corpus_dir, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(corpus_dir, folder)
    good_photos = demo_photo_paths()[:3]
    for photo in good_photos:
        shutil.copy(photo, folder / photo.name)
    index_dir = tmp_path / "index"
    result = run_cli("index", str(folder), "--index-dir", str(index_dir), "--batch-size", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    listed_bad = [case for case in BAD_CASES if case.filename.lower().endswith(IMAGE_SUFFIXES)]
    for case in listed_bad:
        lines = [line for line in result.stderr.splitlines() if str(folder / case.filename) in line]
        assert len(lines) == 1 and lines[0].startswith("skipped "), f"{case.name}: {lines}"
        assert len(lines[0].split(": ", 1)[-1]) > 5, f"{case.name} has no reason: {lines[0]}"
    with LocalIndex(index_dir, writable=False) as index:
        keys = set(indexed_keys(index))
        assert not index.check_integrity()
    expected = {case.filename for case in GOOD_CASES} | {photo.name for photo in good_photos}
    assert keys == expected
    assert f"failed {len(listed_bad)}" in result.stderr


def test_indexing_a_folder_of_only_bad_files_exits_non_zero(corpus_dir, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for case in BAD_CASES:
        shutil.copy(corpus_dir / case.filename, folder / case.filename)
    result = run_cli("index", str(folder), "--index-dir", str(tmp_path / "index"), "--quiet")
    assert result.returncode != 0
    assert result.stderr.count("skipped ") >= len([c for c in BAD_CASES if c.filename.endswith(IMAGE_SUFFIXES)])


def test_indexing_a_missing_folder_exits_non_zero(tmp_path):
    result = run_cli("index", str(tmp_path / "nowhere"), "--index-dir", str(tmp_path / "index"), "--quiet")
    assert result.returncode != 0 and str(tmp_path / "nowhere") in result.stderr
