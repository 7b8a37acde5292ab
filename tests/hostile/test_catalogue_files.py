"""Hostile catalogue folders and files (issue 13, findings 3, 4, 10 and 11): FIFOs, sockets and devices are
reported and skipped, never opened; names that are not valid UTF-8 or hold any control character are reported
(shown safely) and skipped while the rest is indexed; and GET /images serves only the regular file inside the
catalogue folder whose bytes were indexed."""

from __future__ import annotations

import os
import shutil
import socket
import unicodedata
from pathlib import Path

import pytest
from cli_runner import needs_local_model, run_cli
from corpus import demo_photo_paths
from fastapi.testclient import TestClient
from live_server import index_folder

from visual_search.core.keys import key_problem
from visual_search.core.settings import Settings
from visual_search.server.app import create_app
from visual_search.stores.local_folder import LocalFolderStore

pytestmark = pytest.mark.timeout(300)
# Every control character a file name can hold: C0 but NUL (and '/', which is no control), DEL and C1.
CONTROL_CHARACTERS = [chr(c) for c in [*range(1, 32), 127, *range(0x80, 0xA0)]]
NON_UTF8_NAME = b"caf\xe9-latin1.jpg"


@pytest.fixture()
def hostile_folder(tmp_path) -> Path:
    """Two real photos beside a FIFO, a socket, a link to a device, a non-UTF-8 name and every control character."""
    folder = tmp_path / "catalogue"
    folder.mkdir()
    photo = demo_photo_paths()[0].read_bytes()
    (folder / "good-1.jpg").write_bytes(photo)
    (folder / "good-2.jpg").write_bytes(demo_photo_paths()[1].read_bytes())
    os.mkfifo(folder / "pipe.jpg")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "socket.png"))
    (folder / "zero.jpg").symlink_to("/dev/zero")
    with open(os.path.join(os.fsencode(folder), NON_UTF8_NAME), "wb") as handle:
        handle.write(photo)
    for character in CONTROL_CHARACTERS:
        (folder / f"ctl-{ord(character):02x}-{character}.jpg").write_bytes(photo)
    yield folder
    listener.close()


def test_the_key_rule_refuses_every_control_character_and_bad_utf8_and_nothing_else():
    for character in CONTROL_CHARACTERS:
        assert key_problem(f"a{character}b.jpg"), repr(character)
    assert key_problem(os.fsdecode(NON_UTF8_NAME))
    for fine in ["shoes/red 1.jpg", "café.jpg", "日本/靴.png", "a+b&c=%20#.jpg", "emoji-👟.webp"]:
        assert key_problem(fine) is None, fine
    assert all(unicodedata.category(c) == "Cc" for c in CONTROL_CHARACTERS)


@pytest.mark.timeout(30)  # a FIFO opened for reading would block for ever
def test_the_folder_store_lists_only_regular_files_with_usable_names(hostile_folder):
    store = LocalFolderStore(hostile_folder)
    assert list(store.list_keys()) == ["good-1.jpg", "good-2.jpg"]
    reasons = dict(store.skipped)
    assert reasons[str(hostile_folder / "pipe.jpg")] == "it is a FIFO (named pipe), not an image file"
    assert reasons[str(hostile_folder / "socket.png")] == "it is a socket, not an image file"
    assert reasons[str(hostile_folder / "zero.jpg")] == "it is a character device, not an image file"
    assert reasons[f"{hostile_folder}/caf\\xe9-latin1.jpg"].startswith("its name is not valid UTF-8")
    control_reasons = [reason for path, reason in store.skipped if "/ctl-" in path]
    assert len(control_reasons) == len(CONTROL_CHARACTERS)
    assert all("control character U+" in reason for reason in control_reasons)
    for path_shown, _ in store.skipped:  # shown safely: no raw control character or undecodable byte
        assert all(unicodedata.category(c) != "Cc" for c in path_shown) and path_shown.isprintable()
    with pytest.raises(Exception, match="FIFO"):
        store.read("pipe.jpg")


@needs_local_model
def test_index_of_the_hostile_folder_reports_each_entry_and_indexes_the_rest(hostile_folder, tmp_path):
    result = run_cli("index", str(hostile_folder), "--index-dir", str(tmp_path / "index"), "--quiet", timeout_s=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "indexed 2," in result.stderr
    assert f"skipped {hostile_folder}/pipe.jpg: it is a FIFO" in result.stderr
    assert f"skipped {hostile_folder}/caf\\xe9-latin1.jpg: its name is not valid UTF-8" in result.stderr
    assert result.stderr.count("control character U+") == len(CONTROL_CHARACTERS)
    assert all(unicodedata.category(c) != "Cc" or c == "\n" for c in result.stderr)  # nothing raw reached the terminal


@needs_local_model
@pytest.mark.parametrize(
    ("target", "reason"),
    [("pipe.jpg", "it is a FIFO (named pipe), not an image file"), (".", "it is a folder, not an image file")],
)
def test_search_of_a_fifo_or_a_folder_says_what_it_is(hostile_folder, tmp_path, target, reason):
    index_dir = tmp_path / "index"
    assert (
        run_cli("index", str(hostile_folder / "good-1.jpg"), "--index-dir", str(index_dir), "--quiet").returncode == 0
    )
    result = run_cli("search", str(hostile_folder / target), "--index-dir", str(index_dir), timeout_s=60)
    assert result.returncode == 1 and reason in result.stderr and "Errno" not in result.stderr


@pytest.fixture()
def served(tmp_path):
    """A catalogue of three photos (one in a subfolder) indexed and served; yields (client, folder)."""
    folder = tmp_path / "served"
    (folder / "sub").mkdir(parents=True)
    for index, name in enumerate(["a.jpg", "b.jpg", "sub/c.jpg"]):
        shutil.copy(demo_photo_paths()[index], folder / name)
    service = index_folder(folder, tmp_path / "index")
    app = create_app(Settings(index=str(tmp_path / "index")), search_service=service, frontend_dir=tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, folder


def test_an_indexed_file_is_served_with_its_bytes(served):
    client, folder = served
    response = client.get("/images/sub/c.jpg")
    assert response.status_code == 200 and response.content == (folder / "sub" / "c.jpg").read_bytes()
    assert response.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    "replacement",
    [
        "link to /etc/passwd",
        "link outside holding the same bytes",
        "other bytes",
        "fifo",
        "folder",
        "gone",
        "link loop",
    ],
)
@pytest.mark.timeout(30)
def test_an_indexed_file_that_was_replaced_is_not_served(served, tmp_path, replacement):
    client, folder = served
    path = folder / "a.jpg"
    original = path.read_bytes()
    path.unlink()
    if replacement == "link to /etc/passwd":
        path.symlink_to("/etc/passwd")
    elif replacement == "link outside holding the same bytes":
        outside = tmp_path / "outside.jpg"
        outside.write_bytes(original)
        path.symlink_to(outside)
    elif replacement == "other bytes":
        path.write_bytes(demo_photo_paths()[5].read_bytes())
    elif replacement == "fifo":
        os.mkfifo(path)
    elif replacement == "folder":
        path.mkdir()
    elif replacement == "link loop":
        path.symlink_to(path)
    response = client.get("/images/a.jpg")
    assert response.status_code == 404, response.content[:200]
    assert response.json()["error"]["code"] == "not_found" and "root:" not in response.text


def test_a_link_inside_the_catalogue_to_the_same_bytes_is_still_served(served):
    client, folder = served
    (folder / "a.jpg").unlink()
    shutil.copy(demo_photo_paths()[0], folder / "sub" / "a-moved.jpg")
    (folder / "a.jpg").symlink_to(folder / "sub" / "a-moved.jpg")
    assert client.get("/images/a.jpg").status_code == 200
