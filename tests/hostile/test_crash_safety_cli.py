"""Crash safety and concurrency of `visual-search index`, end to end (real processes, the real model).

"Acknowledged" here means: committed, as seen by an independent reader. The test process opens the index
read-only and polls its keys while the indexer runs; every key it has seen before the SIGKILL must still be
there afterwards. (The progress bar is no acknowledgement: it counts images prepared, and a batch is committed
only after it is embedded, so up to a batch of images shown as done is legitimately lost by a kill.)

The library-level versions (a writer killed inside upsert, the writer lock freed on SIGKILL, two writers) are
the index's own tests in tests/unit/test_local_index*.py; these are the CLI's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import VISUAL_SEARCH, clean_env, needs_local_model, run_cli
from corpus import demo_photo_paths
from fakes import indexed_hashes
from hostile_support import assert_no_stack_trace

from visual_search.core.errors import VisualSearchError
from visual_search.core.hashing import sha256_hex
from visual_search.indexes.local.index import LocalIndex

pytestmark = [needs_local_model, pytest.mark.timeout(300)]

BATCH_SIZE = 4  # small batches commit often, so a kill lands between many commits
CATALOGUE_PHOTOS = 160  # enough for a kill to land mid-run, few enough to index twice quickly
KILL_AFTER_KEYS = 24
READER = Path(__file__).with_name("index_reader.py")
SUMMARY = re.compile(r"indexed (\d+), unchanged (\d+), failed (\d+)")


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    """A private copy of demo catalogue photos (the index command reads a folder)."""
    folder = tmp_path_factory.mktemp("catalogue")
    for photo in demo_photo_paths()[:CATALOGUE_PHOTOS]:
        shutil.copy(photo, folder / photo.name)
    return folder


def index_command(catalogue: Path, index_dir: Path) -> list[str]:
    return [
        str(VISUAL_SEARCH),
        "index",
        str(catalogue),
        "--index-dir",
        str(index_dir),
        "--batch-size",
        str(BATCH_SIZE),
        "--quiet",
    ]


def start_indexer(catalogue: Path, index_dir: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        index_command(catalogue, index_dir),
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def open_reader(index_dir: Path) -> LocalIndex | None:
    """The index opened read-only, or None while the indexer has not created it yet."""
    try:
        return LocalIndex(index_dir, writable=False)
    except (VisualSearchError, sqlite3.Error):
        return None


def wait_for_keys(indexer: subprocess.Popen, index_dir: Path, at_least: int, timeout_s: float = 120) -> set[str]:
    """Polls the index from this process until it has seen `at_least` committed keys; returns every key seen."""
    seen: set[str] = set()
    reader = None
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and indexer.poll() is None and len(seen) < at_least:
            reader = reader or open_reader(index_dir)
            if reader is not None:
                seen |= set(indexed_hashes(reader))
            time.sleep(0.005)
    finally:
        if reader is not None:
            reader.close()
    return seen


def summary(stderr: str) -> tuple[int, int, int]:
    match = SUMMARY.search(stderr)
    assert match, f"no summary line in: {stderr[-1000:]}"
    return tuple(int(group) for group in match.groups())


def test_sigkill_mid_run_keeps_every_acknowledged_image_and_a_rerun_completes_without_duplicates(catalogue, tmp_path):
    names = {path.name for path in catalogue.iterdir()}
    index_dir = tmp_path / "index"
    indexer = start_indexer(catalogue, index_dir, tmp_path / "first.log")
    try:
        acknowledged = wait_for_keys(indexer, index_dir, KILL_AFTER_KEYS)
        assert indexer.poll() is None, "the indexer finished (or died) before it could be killed mid-run"
        os.kill(indexer.pid, signal.SIGKILL)
    finally:
        if indexer.poll() is None:
            indexer.kill()
        indexer.wait(timeout=30)
    assert indexer.returncode == -signal.SIGKILL
    assert len(acknowledged) >= KILL_AFTER_KEYS

    with LocalIndex(index_dir, writable=False) as index:
        assert index.check_integrity() == []
        held = indexed_hashes(index)
        assert index.count() == len(held)
    assert acknowledged <= set(held), f"lost acknowledged images: {sorted(acknowledged - set(held))[:5]}"
    assert set(held) <= names
    assert len(held) < len(names), "the kill did not land mid-run"
    torn = [key for key, digest in held.items() if sha256_hex((catalogue / key).read_bytes()) != digest]
    assert not torn, f"records whose hash is not their file's: {torn[:5]}"

    # The kill freed the writer lock; the same command finishes the job, skipping what was committed.
    rerun = run_cli(*index_command(catalogue, index_dir)[1:], timeout_s=240)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert summary(rerun.stderr) == (len(names) - len(held), len(held), 0)
    with LocalIndex(index_dir, writable=False) as index:
        assert index.check_integrity() == []
        assert index.count() == len(names) and set(indexed_hashes(index)) == names

    # And once more: nothing left to do, still no duplicates.
    again = run_cli(*index_command(catalogue, index_dir)[1:], timeout_s=240)
    assert again.returncode == 0 and summary(again.stderr) == (0, len(names), 0)
    with LocalIndex(index_dir, writable=False) as index:
        assert index.count() == len(names)


def test_readers_get_consistent_results_while_indexing_and_a_second_indexer_is_refused(catalogue, tmp_path):
    names = {path.name for path in catalogue.iterdir()}
    index_dir = tmp_path / "index"
    indexer = start_indexer(catalogue, index_dir, tmp_path / "indexer.log")
    reader = subprocess.Popen(
        [sys.executable, str(READER), str(index_dir), "--seconds", "60", "--k", "20", "--until-count", str(len(names))],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_keys(indexer, index_dir, BATCH_SIZE), "nothing was committed"
        running_during_second = indexer.poll() is None
        second = run_cli(*index_command(catalogue, index_dir)[1:], timeout_s=120)
        search = run_cli(
            "search",
            str(catalogue / sorted(names)[0]),
            "--index-dir",
            str(index_dir),
            "-k",
            "5",
            "--json",
            timeout_s=120,
        )
        assert indexer.wait(timeout=240) == 0
        reader_out, reader_err = reader.communicate(timeout=60)
    finally:
        for process in (indexer, reader):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    first_log = (tmp_path / "indexer.log").read_text()
    assert_no_stack_trace(first_log)
    assert summary(first_log) == (len(names), 0, 0)

    # The second indexer: refused with a clear message while the first held the directory.
    if running_during_second:
        assert second.returncode == 1
        assert "is being written by process" in second.stderr and str(index_dir) in second.stderr
        assert "indexed" not in second.stderr

    # A CLI search started while indexing (it may finish after): a valid result list.
    assert search.returncode == 0, search.stderr[-1000:]
    results = json.loads(search.stdout)["results"]
    keys = [hit["key"] for hit in results]
    assert 1 <= len(keys) <= 5 and len(set(keys)) == len(keys) and set(keys) <= names
    assert [hit["score"] for hit in results] == sorted((hit["score"] for hit in results), reverse=True)

    # The reader process: every search a valid, self-consistent result set; counts only grow.
    assert reader.returncode == 0, reader_err[-2000:]
    lines = [json.loads(line) for line in reader_out.splitlines() if line.strip()]
    mid_run = [line for line in lines if line["count"] < len(names)]
    assert len(mid_run) >= 3, f"the reader searched only {len(mid_run)} times while the index was being written"
    previous_count = 0
    for line in lines:
        keys, scores = line["keys"], line["scores"]
        assert len(keys) == len(set(keys)) and set(keys) <= names
        assert len(keys) >= min(20, line["count"]), "fewer hits than committed records"
        assert scores == sorted(scores, reverse=True) and all(-1.0001 <= score <= 1.0001 for score in scores)
        assert scores[0] > 0.999, "the query's own vector must be its own nearest neighbour"
        assert line["count"] >= previous_count
        previous_count = line["count"]
    with LocalIndex(index_dir, writable=False) as index:
        assert index.check_integrity() == [] and index.count() == len(names)
    if not running_during_second:
        pytest.fail("the first indexer finished before the second started: the lock was not exercised")


def test_a_second_indexer_is_refused_while_another_process_holds_the_index(catalogue, tmp_path):
    """Deterministic: this process holds the writer lock; the CLI must refuse, name the directory, exit 1."""
    index_dir = tmp_path / "index"
    photos = sorted(catalogue.iterdir())[:2]
    first = run_cli("index", *map(str, photos), "--index-dir", str(index_dir), "--quiet")
    assert first.returncode == 0, first.stderr
    with LocalIndex(index_dir, writable=True) as held:
        refused = run_cli("index", str(catalogue), "--index-dir", str(index_dir), "--quiet")
        assert held.count() == 2
    assert refused.returncode == 1
    # Which process holds it and what to do, in words for a terminal (not "open it with writable=False").
    assert f"is being written by process {os.getpid()} (" in refused.stderr
    assert f"kill {os.getpid()}" in refused.stderr and "writable" not in refused.stderr
    with LocalIndex(index_dir, writable=False) as index:
        assert index.count() == 2 and index.check_integrity() == []
