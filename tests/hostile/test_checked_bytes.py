"""Issue 22, class 1: only bytes that were checked are served, thumbnailed, put in a report or indexed.

One function (core/local_files.read_catalogue_file) opens a catalogue file: a regular file, inside its folder
once every link is resolved, size-bounded, opened without blocking and checked on the opened descriptor. These
tests swap files for links, FIFOs and folders at every stage, including while requests run (the race the probe
won 5 times in 600), and check that an outside file is never read, served or cached and that nothing hangs.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from corpus import demo_photo_paths
from fakes import HistogramEmbedder, indexed_keys
from fastapi.testclient import TestClient
from live_server import index_folder
from PIL import Image

from visual_search.api.duplicates_report import render_report
from visual_search.core.errors import InvalidRequestError, NotFoundError
from visual_search.core.local_files import read_catalogue_file
from visual_search.core.settings import Settings
from visual_search.indexes.local.index import LocalIndex
from visual_search.server.app import create_app
from visual_search.services.duplicates import find_duplicates
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.stores.local_folder import LocalFolderStore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def catalogue(tmp_path) -> tuple[Path, Path]:
    """A catalogue folder of three demo photos (one in a sub-folder) and a private photo outside it."""
    folder = tmp_path / "catalogue"
    (folder / "sub").mkdir(parents=True)
    for number, name in enumerate(["a.jpg", "b.jpg", "sub/c.jpg"]):
        shutil.copy(demo_photo_paths()[number], folder / name)
    private = tmp_path / "private"
    private.mkdir()
    shutil.copy(demo_photo_paths()[7], private / "secret.jpg")
    shutil.copy(demo_photo_paths()[8], private / "c.jpg")
    return folder, private


# -- the one function --------------------------------------------------------------------------------------


def test_a_link_inside_the_folder_is_followed_and_a_link_out_of_it_is_refused(catalogue):
    folder, private = catalogue
    (folder / "inside-link.jpg").symlink_to(folder / "sub" / "c.jpg")
    (folder / "outside-link.jpg").symlink_to(private / "secret.jpg")
    (folder / "passwd.jpg").symlink_to("/etc/passwd")
    assert read_catalogue_file(folder / "inside-link.jpg", folder) == (folder / "sub" / "c.jpg").read_bytes()
    for name in ("outside-link.jpg", "passwd.jpg"):
        with pytest.raises(InvalidRequestError, match="outside the catalogue folder"):
            read_catalogue_file(folder / name, folder)
    # The documented way to allow more: the operator vouches for where the links go.
    assert (
        read_catalogue_file(folder / "outside-link.jpg", folder, follow_links_outside=True)
        == (private / "secret.jpg").read_bytes()
    )


def test_a_sub_folder_swapped_for_a_link_out_of_the_folder_is_refused(catalogue):
    folder, private = catalogue
    shutil.rmtree(folder / "sub")
    (folder / "sub").symlink_to(private)
    with pytest.raises(InvalidRequestError, match="outside"):
        read_catalogue_file(folder / "sub" / "c.jpg", folder)


@pytest.mark.timeout(10)  # a FIFO opened for reading without O_NONBLOCK blocks for ever
@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "link loop"])
def test_what_is_not_a_regular_file_is_refused_without_blocking(catalogue, kind):
    folder, _ = catalogue
    path = folder / "odd.jpg"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(path)
    with pytest.raises(InvalidRequestError):
        read_catalogue_file(path, folder)


def test_a_file_over_the_size_bound_is_refused_before_it_is_read(catalogue):
    folder, _ = catalogue
    with pytest.raises(InvalidRequestError, match="larger than 1,000 bytes"):
        read_catalogue_file(folder / "a.jpg", folder, max_bytes=1000)
    with pytest.raises(NotFoundError):
        read_catalogue_file(folder / "gone.jpg", folder)


def test_a_file_swapped_between_the_check_and_the_read_is_refused(catalogue, monkeypatch):
    """The check-then-open race made deterministic: the link appears right after the path was resolved."""
    folder, private = catalogue
    target = folder / "a.jpg"
    real_open = os.open

    def open_after_swap(path, flags, *args, **kwargs):
        if Path(path) == target and not target.is_symlink():
            target.unlink()
            target.symlink_to(private / "secret.jpg")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_swap)
    with pytest.raises(InvalidRequestError):
        read_catalogue_file(target, folder)


# -- indexing ----------------------------------------------------------------------------------------------


def test_indexing_a_folder_never_reads_through_a_link_out_of_it(catalogue, tmp_path):
    folder, private = catalogue
    (folder / "outside-link.jpg").symlink_to(private / "secret.jpg")
    (folder / "passwd.jpg").symlink_to("/etc/passwd")
    (folder / "inside-link.jpg").symlink_to(folder / "b.jpg")
    store = LocalFolderStore(folder)
    keys = list(store.list_keys())
    assert keys == ["a.jpg", "b.jpg", "inside-link.jpg", "sub/c.jpg"]
    reasons = dict(store.skipped)
    assert "outside the catalogue folder" in reasons[str(folder / "outside-link.jpg")]
    assert "outside the catalogue folder" in reasons[str(folder / "passwd.jpg")]
    # A sub-folder swapped for a link after the listing: the read refuses, so nothing outside is indexed.
    shutil.rmtree(folder / "sub")
    (folder / "sub").symlink_to(private)
    embedder = HistogramEmbedder()
    with LocalIndex(tmp_path / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True) as ix:
        report = IndexingService(embedder, ix).index_items(
            [IndexItem(key, store.uri(key), (lambda k=key: store.read(k))) for key in keys]
        )
        assert indexed_keys(ix) == ["a.jpg", "b.jpg", "inside-link.jpg"]
    assert [failure.key for failure in report.failed] == ["sub/c.jpg"]


def test_a_link_out_of_the_folder_is_indexed_when_the_operator_allows_it(catalogue):
    folder, private = catalogue
    (folder / "outside-link.jpg").symlink_to(private / "secret.jpg")
    store = LocalFolderStore(folder, follow_links_outside=True)
    assert "outside-link.jpg" in list(store.list_keys())
    assert store.read("outside-link.jpg") == (private / "secret.jpg").read_bytes()


# -- thumbnails and /images under a swapping attacker -------------------------------------------------------


@pytest.fixture()
def served(catalogue, tmp_path):
    folder, private = catalogue
    service = index_folder(folder, tmp_path / "index")
    settings = Settings(index=str(tmp_path / "index"), cache_dir=str(tmp_path / "cache"))
    app = create_app(settings, search_service=service, frontend_dir=tmp_path / "no-ui")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, folder, private, tmp_path / "cache" / "thumbnails"
    service.index.close()


def _jpeg_thumbnail_of(data: bytes, size: int) -> Image.Image:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.thumbnail((size, size))
    return image


def _looks_like(served_bytes: bytes, reference: Image.Image) -> bool:
    image = Image.open(io.BytesIO(served_bytes)).convert("RGB")
    if image.size != reference.size:
        return False
    difference = sum(abs(a - b) for a, b in zip(image.tobytes()[::97], reference.tobytes()[::97], strict=False))
    return difference / max(1, len(image.tobytes()[::97])) < 12


def _swapping(path: Path, replacement, stop: threading.Event) -> threading.Thread:
    """A thread that puts the original file and `replacement` at `path` in turn until `stop` is set."""
    original = path.read_bytes()
    staging = path.with_name(".staging-original")

    def loop():
        while not stop.is_set():
            replacement_path = path.with_name(".staging-replacement")
            replacement(replacement_path)
            os.replace(replacement_path, path)  # atomic: the path is always something
            staging.write_bytes(original)
            os.replace(staging, path)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_thumbnails_under_a_link_swapping_race_are_never_the_outside_image_and_never_cached(served):
    client, folder, private, cache = served
    secret = (private / "secret.jpg").read_bytes()
    original = (folder / "a.jpg").read_bytes()
    stop = threading.Event()
    swapper = _swapping(folder / "a.jpg", lambda p: p.symlink_to(private / "secret.jpg"), stop)
    statuses = []
    try:
        for number in range(300):
            width = (160, 320, 480)[number % 3]
            response = client.get(f"/images/a.jpg?w={width}")
            statuses.append(response.status_code)
            if response.status_code == 200:
                assert not _looks_like(response.content, _jpeg_thumbnail_of(secret, width)), "the outside image"
                assert _looks_like(response.content, _jpeg_thumbnail_of(original, width))
            else:
                assert response.status_code == 404, response.text[:200]
            full = client.get("/images/a.jpg")
            assert full.status_code == 404 or full.content == original
    finally:
        stop.set()
        swapper.join(10)
    assert 200 in statuses, "the race never let the real file through: the test proves nothing"
    # Every cached thumbnail is of the indexed image: the outside one, served or not, was never cached.
    for cached in cache.rglob("*.jpg"):
        size = int(cached.stem.rsplit("-", 1)[1])
        assert not _looks_like(cached.read_bytes(), _jpeg_thumbnail_of(secret, size)), cached


@pytest.mark.timeout(60)
def test_thumbnail_requests_under_a_fifo_swapping_race_all_finish(served):
    client, folder, _, _ = served
    stop = threading.Event()
    swapper = _swapping(folder / "a.jpg", lambda p: os.mkfifo(p), stop)
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        started = time.monotonic()
        futures = [pool.submit(client.get, f"/images/a.jpg?w={(160, 320)[n % 2]}") for n in range(200)]
        for future in futures:
            response = future.result(timeout=max(1.0, 30 - (time.monotonic() - started)))
            assert response.status_code in (200, 404), response.text[:200]
    finally:
        stop.set()
        swapper.join(10)
        _unblock_fifo_readers(folder / "a.jpg")
        pool.shutdown(wait=False, cancel_futures=True)


def _unblock_fifo_readers(path: Path) -> None:
    """If a reader is blocked on a FIFO (the bug), open it for writing and close it, so the test run ends."""
    for _ in range(50):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return


# -- the duplicates report -----------------------------------------------------------------------------------


def test_the_duplicates_report_embeds_only_files_that_are_still_the_ones_indexed(catalogue, tmp_path):
    folder, private = catalogue
    shutil.copy(folder / "a.jpg", folder / "a-copy.jpg")
    service = index_folder(folder, tmp_path / "index")
    report = find_duplicates(service.index, threshold=0.99)
    service.index.close()
    assert any({m.record.key for m in g.members} >= {"a.jpg", "a-copy.jpg"} for g in report.groups)
    (folder / "a-copy.jpg").unlink()
    (folder / "a-copy.jpg").symlink_to(private / "secret.jpg")
    page = render_report(report)
    secret = _jpeg_thumbnail_of((private / "secret.jpg").read_bytes(), 180)
    embedded = [part.split('"', 1)[0] for part in page.split('src="data:image/jpeg;base64,')[1:]]
    assert embedded, "the group's intact member is still shown"
    for data in embedded:
        assert not _looks_like(base64.b64decode(data), secret), "a private image went into the report"
    assert "not the one indexed" in page
