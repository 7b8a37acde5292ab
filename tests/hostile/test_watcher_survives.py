"""Issue 22, class 2: the folder watcher never dies of what it watches, and /health tells the truth about it.

A labels file rewritten with bytes that are not UTF-8, replaced by a FIFO, or holding a 200,000-character field
used to end the `folder-watcher` thread (only VisualSearchError was caught) or block it, while /health stayed 200
and no later file was indexed. Here each of those is written under a running watcher, and a file added after it
must still be indexed; `index DIR --labels FIFO` must refuse at once; /health must answer 503 for a dead or stuck
watcher (its death simulated by a fake event source from tests/fakes.py, not by anything the product ships).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from cli_runner import run_cli
from corpus import demo_photo_paths
from fakes import DyingEventSource, HangingEventSource, HistogramEmbedder
from fastapi.testclient import TestClient

from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.errors import InvalidRequestError
from visual_search.core.settings import Settings
from visual_search.indexes.local.index import LocalIndex
from visual_search.server.app import create_app
from visual_search.services.catalogue import IndexingWriter
from visual_search.services.indexing import IndexingService
from visual_search.services.search import SearchService
from visual_search.services.watching import FolderWatcher
from visual_search.stores.local_folder import LocalFolderStore

pytestmark = pytest.mark.timeout(120)

BAD_LABELS = {
    "not UTF-8": lambda path: path.write_bytes(b"path,label\na.jpg,caf\xe9\xff\n"),
    "a FIFO": lambda path: (path.unlink(), os.mkfifo(path)),
    "a 200,000-character field": lambda path: path.write_text("path,label\na.jpg," + "x" * 200_000 + "\n"),
    "a NUL in a label": lambda path: path.write_text("path,label\na.jpg,sho\x00es\n"),
    "a quote that never closes": lambda path: path.write_text('path,label\na.jpg,"shoes\n'),
    "a folder": lambda path: (path.unlink(), path.mkdir()),
}


@pytest.fixture()
def watched(tmp_path):
    """(folder, labels csv, index, watcher): a running watcher (polling, no native events) over one photo."""
    folder = tmp_path / "catalogue"
    folder.mkdir()
    shutil.copy(demo_photo_paths()[0], folder / "a.jpg")
    labels = folder / "labels.csv"
    labels.write_text("path,label\na.jpg,shoes\n")
    embedder = HistogramEmbedder()
    index = LocalIndex(tmp_path / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
    writer = IndexingWriter(IndexingService(embedder, index), LocalFolderStore(tmp_path / "uploads"))
    watcher = FolderWatcher(
        folder,
        LocalFolderStore(folder),
        writer,
        labels_csv=labels,
        settle_s=0.1,
        rescan_s=0.3,
        poll_s=0.05,
        use_events=False,
    )
    watcher.start()
    yield folder, labels, index, watcher
    watcher.stop()
    index.close()


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("bad", list(BAD_LABELS), ids=list(BAD_LABELS))
def test_a_bad_labels_file_keeps_the_labels_and_later_files_are_still_indexed(watched, bad):
    folder, labels, index, watcher = watched
    wait_until(lambda: index.get(["a.jpg"]).get("a.jpg") is not None, 20, "the first photo indexed")
    assert index.get(["a.jpg"])["a.jpg"].label == "shoes"
    BAD_LABELS[bad](labels)
    time.sleep(0.5)  # a few rounds read the bad file
    shutil.copy(demo_photo_paths()[1], folder / "b.jpg")
    wait_until(lambda: index.get(["b.jpg"]).get("b.jpg") is not None, 20, "a file added after the bad labels")
    assert watcher.problem() is None and watcher._thread.is_alive()
    assert index.get(["a.jpg"])["a.jpg"].label == "shoes", "the previous labels were kept"
    assert watcher.last_error and "labels" in watcher.last_error


@pytest.mark.timeout(20)
@pytest.mark.parametrize("bad", list(BAD_LABELS), ids=list(BAD_LABELS))
def test_reading_a_bad_labels_file_is_one_clear_message(tmp_path, bad):
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n")
    BAD_LABELS[bad](labels)
    with pytest.raises(InvalidRequestError) as raised:
        read_catalogue_csv(labels)
    assert str(labels) in raised.value.message and "Error" not in raised.value.message


@pytest.mark.timeout(60)
def test_index_with_a_fifo_for_labels_refuses_at_once(tmp_path):
    os.mkfifo(tmp_path / "labels.csv")
    started = time.monotonic()
    result = run_cli(
        "index",
        str(demo_photo_paths()[0]),
        "--labels",
        str(tmp_path / "labels.csv"),
        "--index-dir",
        str(tmp_path / "index"),
        timeout_s=50,
    )
    assert result.returncode == 1 and "FIFO" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 45


def test_a_long_field_in_the_labels_is_a_message_not_a_csv_error(tmp_path):
    labels = tmp_path / "labels.csv"
    BAD_LABELS["a 200,000-character field"](labels)
    result = run_cli("index", str(demo_photo_paths()[0]), "--labels", str(labels), "--index-dir", str(tmp_path / "i"))
    assert result.returncode == 1 and "line 2" in result.stderr
    assert "_csv.Error" not in result.stderr and "Traceback" not in result.stderr


# -- /health ------------------------------------------------------------------------------------------------


def _served_with(watcher: FolderWatcher, index, tmp_path: Path) -> TestClient:
    app = create_app(
        Settings(index=str(tmp_path / "index")),
        search_service=SearchService(HistogramEmbedder(), index),
        frontend_dir=tmp_path / "no-ui",
        health_checks=[watcher.problem],  # as `serve --watch` wires it
    )
    return TestClient(app, raise_server_exceptions=False)


def _watcher(tmp_path: Path, **options) -> tuple[FolderWatcher, LocalIndex]:
    folder = tmp_path / "catalogue"
    folder.mkdir(exist_ok=True)
    embedder = HistogramEmbedder()
    index = LocalIndex(tmp_path / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
    writer = IndexingWriter(IndexingService(embedder, index), LocalFolderStore(tmp_path / "uploads"))
    return FolderWatcher(folder, LocalFolderStore(folder), writer, poll_s=0.05, **options), index


def test_health_is_200_while_the_watcher_runs_and_503_once_it_died(tmp_path):
    healthy, index = _watcher(tmp_path, use_events=False)
    healthy.start()
    with _served_with(healthy, index, tmp_path) as client:
        assert client.get("/health").status_code == 200
    healthy.stop()
    with _served_with(healthy, index, tmp_path) as client:
        assert client.get("/health").status_code == 200, "a watcher stopped on purpose is no problem"

    dying = FolderWatcher(healthy.folder, healthy.store, healthy.writer, event_source=DyingEventSource())
    dying.start()
    dying._thread.join(10)
    with _served_with(dying, index, tmp_path) as client:
        response = client.get("/health")
    assert response.status_code == 503 and response.headers.get("retry-after")
    error = response.json()["error"]
    assert error["code"] == "unhealthy" and "watcher" in error["message"] and "stopped" in error["message"]
    index.close()


def test_health_is_503_when_the_watcher_is_stuck(tmp_path):
    source = HangingEventSource()
    stuck, index = _watcher(tmp_path, event_source=source, stuck_after_s=0.3)
    stuck.start()
    try:
        time.sleep(0.6)
        with _served_with(stuck, index, tmp_path) as client:
            response = client.get("/health")
        assert response.status_code == 503 and "stuck" in response.json()["error"]["message"]
    finally:
        source.release.set()
        stuck.stop()
        index.close()


def test_a_failing_event_source_falls_back_to_rescans(tmp_path):
    class Refusing:
        def __call__(self, folder, on_key, on_folder_event):
            raise OSError(28, "inotify watch limit reached")

    watcher, index = _watcher(tmp_path, event_source=Refusing(), rescan_s=0.2, settle_s=0.1)
    watcher.start()
    try:
        shutil.copy(demo_photo_paths()[2], watcher.folder / "c.jpg")
        wait_until(lambda: index.get(["c.jpg"]).get("c.jpg") is not None, 20, "indexed by rescans alone")
        assert watcher.problem() is None
    finally:
        watcher.stop()
        index.close()


def test_an_error_that_persists_is_retried_at_rescans_not_at_every_poll(tmp_path, caplog):
    watcher, index = _watcher(tmp_path, use_events=False, rescan_s=0.5, settle_s=0.05)
    shutil.copy(demo_photo_paths()[3], watcher.folder / "d.jpg")

    def failing(items):
        raise OSError(28, "No space left on device")

    watcher.writer.index_items = failing
    with caplog.at_level("ERROR", logger="visual_search.services.watching"):
        watcher.start()
        time.sleep(1.6)  # 32 polls of 0.05 s, 3 rescans
        watcher.stop()
    failures = [record for record in caplog.records if "No space left" in record.getMessage()]
    assert 1 <= len(failures) <= 8, len(failures)  # about two a rescan (catch-up, then the queued file), not 32
    assert watcher.problem() is None and "No space left" in (watcher.last_error or "")
    index.close()
