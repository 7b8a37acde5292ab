"""Hotspots (services/hotspots.py) with the real model, asked apart (POST /regions, what the UI does after showing
the results) or with the search (POST /search with "regions": true): each item of a two-item photo gets one, a
one-item photo gets none, and only uncropped image or URL queries are given any."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from composites import side_by_side
from fastapi.testclient import TestClient
from live_server import index_folder

from visual_search.bootstrap import build_embedder
from visual_search.core.images import CropBox
from visual_search.core.settings import Settings
from visual_search.server.app import create_app
from visual_search.services.hotspots import iou

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    service = index_folder(PHOTOS, tmp_path_factory.mktemp("index") / "idx", build_embedder(Settings()))
    settings = Settings(index=str(tmp_path_factory.mktemp("unused")))
    with TestClient(create_app(settings, search_service=service)) as client:
        yield client


def search(client, **body) -> dict:
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def hotspots(client, route: str, image: str) -> list[dict]:
    body = {"image": image, "regions": True} if route == "/search" else {"image": image}
    response = client.post(route, json=body)
    assert response.status_code == 200, response.text
    return response.json()["regions"]


def as_box(region: dict) -> CropBox:
    return CropBox(region["x"], region["y"], region["w"], region["h"])


@pytest.mark.parametrize("route", ["/regions", "/search"])
@pytest.mark.parametrize("left, right", [("hat.jpg", "shoes.jpg"), ("t-shirt.jpg", "shorts.jpg")])
def test_each_item_of_a_two_item_photo_gets_a_hotspot(client, left, right, route):
    photo, items = side_by_side(left, right)
    regions = hotspots(client, route, base64.b64encode(photo).decode())
    assert 2 <= len(regions) <= 4
    scores = [region["score"] for region in regions]
    assert scores == sorted(scores, reverse=True)
    for region in regions:
        box = as_box(region)
        assert 0 <= box.x and 0 <= box.y and box.x + box.w <= 1 + 1e-9 and box.y + box.h <= 1 + 1e-9
    for item in items:
        assert max(iou(item, as_box(region)) for region in regions) >= 0.5


def test_tapping_a_hotspot_searches_that_item(client):
    photo, _ = side_by_side("hat.jpg", "shoes.jpg")
    image = base64.b64encode(photo).decode()
    regions = search(client, image=image, regions=True)["regions"]
    found = set()
    for region in regions:
        crop = {side: round(region[side], 4) for side in ("x", "y", "w", "h")}
        crop["w"] = min(crop["w"], round(1 - crop["x"], 4))
        crop["h"] = min(crop["h"], round(1 - crop["y"], 4))
        found.add(search(client, image=image, crop=crop, k=1)["results"][0]["key"])
    assert {"hat.jpg", "shoes.jpg"} <= found


@pytest.mark.parametrize("route", ["/regions", "/search"])
@pytest.mark.parametrize("name", ["hat.jpg", "dress.jpg", "shoes.jpg"])
def test_a_photo_of_one_item_gets_no_hotspots(client, name, route):
    image = base64.b64encode((PHOTOS / name).read_bytes()).decode()
    assert hotspots(client, route, image) == []


def test_the_search_with_regions_and_the_regions_request_agree(client):
    photo, _ = side_by_side("hat.jpg", "shoes.jpg")
    image = base64.b64encode(photo).decode()
    together = search(client, image=image, regions=True)
    assert together["regions"] == hotspots(client, "/regions", image)
    assert [hit["key"] for hit in together["results"]][:2] == [
        hit["key"] for hit in search(client, image=image)["results"]
    ][:2]


def test_regions_are_refused_for_keys_crops_and_bad_bodies(client):
    image = base64.b64encode((PHOTOS / "hat.jpg").read_bytes()).decode()
    for body in ({"key": "hat.jpg"}, {"image": image, "crop": {"x": 0, "y": 0, "w": 0.5, "h": 1}}):
        response = client.post("/regions", json=body)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request", response.text
    assert client.post("/regions", json={"image": image, "url": "http://example.com/a.jpg"}).status_code == 400
    assert client.post("/regions", json={"image": "bm90IGFuIGltYWdl"}).status_code == 400  # "not an image"
    assert client.post("/regions", json={"image": image, "regions": "yes please"}).status_code == 422


def test_regions_are_only_proposed_when_asked_and_never_for_crops_or_keys(client):
    photo, _ = side_by_side("hat.jpg", "shoes.jpg")
    image = base64.b64encode(photo).decode()
    assert search(client, image=image)["regions"] == []
    assert search(client, image=image, regions=True, crop={"x": 0, "y": 0, "w": 0.5, "h": 1})["regions"] == []
    assert search(client, key="hat.jpg", regions=True)["regions"] == []
    response = client.post("/search", json={"image": image, "regions": "yes please"})
    assert response.status_code == 422
