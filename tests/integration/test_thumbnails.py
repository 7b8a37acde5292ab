"""GET /images/{key}?w=N: a resized JPEG that fits an N x N box with the whole image (aspect kept, never
enlarged), cached on disk, with JSON errors for bad widths and unknown keys."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from live_server import index_folder
from PIL import Image

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """The fixture photos plus a wide 'landscape shoe' (1200x500), which a square card must not cut."""
    folder = tmp_path_factory.mktemp("photos")
    for photo in PHOTOS.glob("*.jpg"):
        shutil.copy(photo, folder / photo.name)
    with Image.open(PHOTOS / "shoes.jpg") as shoes:
        shoes.convert("RGB").resize((1200, 500)).save(folder / "wide-shoe.jpg", quality=90)
    return folder


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def client(catalogue, cache_dir, tmp_path_factory):
    service = index_folder(catalogue, tmp_path_factory.mktemp("index") / "idx")
    settings = Settings(index=str(tmp_path_factory.mktemp("unused")), cache_dir=str(cache_dir))
    with TestClient(create_app(settings, search_service=service)) as client:
        yield client


def picture(response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def test_a_thumbnail_fits_the_box_and_keeps_the_whole_landscape_image(client, catalogue):
    thumb = picture(client.get("/images/wide-shoe.jpg", params={"w": 320}))
    assert thumb.format == "JPEG" and thumb.size == (320, 133)  # 1200x500 scaled by 320/1200, nothing cut off
    original = client.get("/images/wide-shoe.jpg")
    assert original.content == (catalogue / "wide-shoe.jpg").read_bytes()  # no w: the file itself
    assert len(client.get("/images/wide-shoe.jpg", params={"w": 320}).content) < len(original.content)


def test_widths_snap_up_to_a_few_cached_sizes_and_small_images_are_not_enlarged(client, cache_dir):
    assert max(picture(client.get("/images/wide-shoe.jpg", params={"w": 300})).size) == 320
    assert max(picture(client.get("/images/wide-shoe.jpg", params={"w": 321})).size) == 480
    with Image.open(PHOTOS / "hat.jpg") as hat:
        original_size = hat.size
    assert picture(client.get("/images/hat.jpg", params={"w": 1024})).size == original_size
    cached = sorted(path.name.rsplit("-", 1)[1] for path in cache_dir.rglob("*.jpg"))
    assert set(cached) <= {"160.jpg", "320.jpg", "480.jpg", "640.jpg", "800.jpg", "1024.jpg"}


def test_a_cached_thumbnail_is_served_from_disk_the_second_time(client, cache_dir):
    first = client.get("/images/dress.jpg", params={"w": 160})
    files = {path: path.stat().st_mtime_ns for path in cache_dir.rglob("*-160.jpg")}
    assert files
    second = client.get("/images/dress.jpg", params={"w": 160})
    assert second.content == first.content
    assert {path: path.stat().st_mtime_ns for path in cache_dir.rglob("*-160.jpg")} == files
    assert not list(cache_dir.rglob("*.part"))


@pytest.mark.parametrize("width", ["0", "-5", "abc", "99999", "1.5"])
def test_a_bad_width_is_a_json_error(client, width):
    response = client.get("/images/hat.jpg", params={"w": width})
    assert response.status_code in (400, 422)
    assert set(response.json()["error"]) == {"code", "message"}


def test_an_unknown_key_is_a_404_with_or_without_a_width(client):
    for params in ({}, {"w": 320}):
        response = client.get("/images/nope.jpg", params=params)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
