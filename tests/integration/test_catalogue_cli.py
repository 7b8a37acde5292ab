"""`visual-search index DIR --watch`, `serve --watch DIR` and `duplicates`, run as the real console script."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from live_server import free_port
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

VISUAL_SEARCH = Path(sys.executable).with_name("visual-search")
CLOTHING = Path("/work/shared/datasets/clothing/images")
FIXTURE_PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


def env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("VISUAL_SEARCH_")}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VISUAL_SEARCH), *args], capture_output=True, text=True, env=env(), timeout=120)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(VISUAL_SEARCH), *args], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def indexed_count(index_dir: Path) -> int:
    result = cli("stats", "--json", "--index-dir", str(index_dir))
    return json.loads(result.stdout)["count"] if result.returncode == 0 else 0


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(0.3)


def photos(count: int) -> list[Path]:
    """Clothing photos; the repository's demo catalogue where the data set is not mounted."""
    folder = CLOTHING if CLOTHING.is_dir() else FIXTURE_PHOTOS.parents[2] / "demo" / "catalogue" / "images"
    found = sorted(folder.glob("*.jpg"))[200 : 200 + count]
    assert len(found) == count, f"needs {count} photos in {folder}"
    return found


def test_a_watcher_killed_mid_burst_loses_nothing_committed_and_catches_up_on_restart(tmp_path):
    folder, index_dir = tmp_path / "catalogue", tmp_path / "index"
    folder.mkdir()
    sources = photos(40)
    watcher = start("index", str(folder), "--watch", "--index-dir", str(index_dir), "--quiet")
    try:
        for source in sources[:20]:
            shutil.copy(source, folder / source.name)
        wait_until(lambda: indexed_count(index_dir) >= 1, 60, "the first photos indexed")
        for source in sources[20:]:
            shutil.copy(source, folder / source.name)
        time.sleep(0.5)
    finally:
        watcher.send_signal(signal.SIGKILL)
        watcher.wait(10)
    committed = indexed_count(index_dir)
    assert committed >= 1
    restarted = start("index", str(folder), "--watch", "--index-dir", str(index_dir), "--quiet")
    try:
        wait_until(lambda: indexed_count(index_dir) == 40, 120, "all 40 photos indexed after the restart")
    finally:
        restarted.send_signal(signal.SIGINT)
        restarted.wait(30)
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from visual_search.indexes.local.index import LocalIndex; "
            "print(LocalIndex(sys.argv[1]).check_integrity())",
            str(index_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "[]", check.stdout + check.stderr


def test_serve_watch_indexes_a_dropped_photo_and_lists_it(tmp_path):
    folder = tmp_path / "catalogue"
    folder.mkdir()
    port = free_port()
    server = start("serve", "--watch", str(folder), "--port", str(port), "--index-dir", str(tmp_path / "index"))

    def listed() -> list[str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/items", timeout=2) as response:
                return [item["key"] for item in json.load(response)["items"]]
        except OSError:
            return []

    try:
        wait_until(lambda: listed() == [] and server.poll() is None and _up(port), 60, "the server up")
        shutil.copy(FIXTURE_PHOTOS / "hat.jpg", folder / "hat.jpg")
        wait_until(lambda: listed() == ["hat.jpg"], 15, "the dropped photo listed")
        (folder / "hat.jpg").unlink()
        wait_until(lambda: listed() == [], 15, "the deleted photo gone")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


def _up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_duplicates_lists_made_up_copies_as_text_json_and_html(tmp_path):
    folder, index_dir = tmp_path / "catalogue", tmp_path / "index"
    shutil.copytree(FIXTURE_PHOTOS, folder, ignore=shutil.ignore_patterns("*.md"))
    dress = Image.open(FIXTURE_PHOTOS / "dress.jpg").convert("RGB")
    dress.resize((dress.width // 2, dress.height // 2)).save(folder / "dress-small.jpg", quality=85)
    dress.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "dress-mirrored.png")
    assert cli("index", str(folder), "--index-dir", str(index_dir), "--quiet").returncode == 0

    text = cli("duplicates", "--index-dir", str(index_dir))
    as_json = json.loads(cli("duplicates", "--json", "--index-dir", str(index_dir)).stdout)
    html_file = tmp_path / "report.html"
    html = cli("duplicates", "--html", str(html_file), "--index-dir", str(index_dir))

    assert text.returncode == 0 and "dress-small.jpg" in text.stdout
    assert [sorted(group["keys"]) for group in as_json["groups"]] == [
        ["dress-mirrored.png", "dress-small.jpg", "dress.jpg"]
    ]
    assert as_json["images_scanned"] == 8
    page = html_file.read_text()
    assert html.returncode == 0 and page.count("data:image/jpeg;base64,") == 3 and "dress-mirrored.png" in page
    refused = cli("duplicates", "--threshold", "7", "--index-dir", str(index_dir))
    assert refused.returncode != 0 and "threshold" in refused.stderr and "Traceback" not in refused.stderr


def test_watch_needs_exactly_one_folder(tmp_path):
    result = cli("index", str(FIXTURE_PHOTOS / "hat.jpg"), "--watch", "--index-dir", str(tmp_path / "index"))
    assert result.returncode != 0 and "one existing folder" in result.stderr
    assert not (tmp_path / "index").exists()
