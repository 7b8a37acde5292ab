"""Shared uploads over HTTP (issue 21): a searched photo is kept under its sha256, `{"upload": id}` searches with it
again, GET /shared-uploads/{id} shows it, an expired or unknown id is a 410/404 `upload_expired`, bad ids are 400,
a photo that does not decode is never kept, and with shared_uploads off nothing is. Real model, real index."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from live_server import index_folder

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
DRESS = (PHOTOS / "dress.jpg").read_bytes()
DRESS_ID = hashlib.sha256(DRESS).hexdigest()
MAX_AGE_S = 3600


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return index_folder(PHOTOS, tmp_path_factory.mktemp("index") / "idx", labels={"dress.jpg": "Dress"})


@pytest.fixture
def kept(tmp_path):
    return tmp_path / "kept"


def client_for(service, tmp_path, **settings) -> TestClient:
    return TestClient(create_app(Settings(index=str(tmp_path / "unused"), **settings), search_service=service))


@pytest.fixture
def client(service, tmp_path, kept):
    with client_for(service, tmp_path, shared_uploads_store=str(kept), shared_uploads_max_age_s=MAX_AGE_S) as client:
        yield client


def keys(body: dict) -> list[str]:
    return [result["key"] for result in body["results"]]


def error_code(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["code"]


def test_an_uploaded_photo_is_kept_and_its_id_searches_again_with_the_same_results(client, kept):
    first = client.post("/search", json={"image": base64.b64encode(DRESS).decode(), "k": 5, "regions": True})
    assert first.status_code == 200, first.text
    assert first.json()["upload"] == DRESS_ID
    assert (kept / DRESS_ID).read_bytes() == DRESS
    again = client.post("/search", json={"upload": DRESS_ID, "k": 5, "regions": True})
    assert again.status_code == 200, again.text
    assert keys(again.json()) == keys(first.json()) and keys(first.json())[0] == "dress.jpg"
    assert again.json()["regions"] == first.json()["regions"] and again.json()["upload"] == DRESS_ID
    hotspots = client.post("/regions", json={"upload": DRESS_ID})  # the UI's second request may name the kept photo
    assert hotspots.status_code == 200 and hotspots.json()["regions"] == first.json()["regions"]
    # A region and a filter of the shared photo, as a refined shared search sends them.
    cropped = client.post("/search", json={"upload": DRESS_ID, "crop": {"x": 0.1, "y": 0.1, "w": 0.8, "h": 0.8}})
    assert cropped.status_code == 200 and cropped.json()["upload"] == DRESS_ID


def test_a_multipart_and_a_raw_upload_are_kept_too(client):
    files = {"file": ("dress.jpg", DRESS, "image/jpeg")}
    assert client.post("/search", files=files).json()["upload"] == DRESS_ID
    raw = client.post("/search", content=DRESS, headers={"content-type": "image/jpeg"})
    assert raw.json()["upload"] == DRESS_ID


def test_the_kept_photo_is_served_with_its_image_type(client):
    client.post("/search", content=DRESS, headers={"content-type": "image/jpeg"})
    response = client.get(f"/shared-uploads/{DRESS_ID}")
    assert response.status_code == 200 and response.content == DRESS
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_url_and_key_queries_keep_nothing(client, kept):
    assert client.post("/search", json={"key": "dress.jpg"}).json()["upload"] is None
    assert not kept.exists() or not any(kept.iterdir())


def test_an_expired_photo_answers_410_and_an_unknown_one_404_both_upload_expired(client, kept):
    client.post("/search", content=DRESS, headers={"content-type": "image/jpeg"})
    old = time.time() - MAX_AGE_S - 5
    os.utime(kept / DRESS_ID, (old, old))
    assert error_code(client.post("/search", json={"upload": DRESS_ID}), 410) == "upload_expired"
    assert error_code(client.post("/search", json={"upload": DRESS_ID}), 404) == "upload_expired"  # deleted
    assert error_code(client.get(f"/shared-uploads/{DRESS_ID}"), 404) == "upload_expired"
    assert error_code(client.get(f"/shared-uploads/{'f' * 64}"), 404) == "upload_expired"


@pytest.mark.parametrize("bad_id", ["..%5C..%5Cetc", "not-hex", "A" * 64, "a" * 63, "a" * 64 + ".jpg"])
def test_a_malformed_id_is_a_400_on_both_routes(client, bad_id):
    assert error_code(client.get(f"/shared-uploads/{bad_id}"), 400) == "invalid_upload_id"
    from urllib.parse import unquote

    response = client.post("/search", json={"upload": unquote(bad_id)})
    assert error_code(response, 400) == "invalid_upload_id"


@pytest.mark.parametrize("path", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"])
def test_traversal_in_the_path_never_reaches_a_file(client, path):
    response = client.get(f"/shared-uploads/{path}")
    assert response.status_code in (400, 404) and b"root:" not in response.content
    assert response.headers["content-type"].startswith(("application/json", "text/html"))


def test_an_upload_with_another_source_is_ambiguous(client):
    body = {"upload": DRESS_ID, "key": "dress.jpg"}
    assert error_code(client.post("/search", json=body), 400) == "ambiguous_query"


def test_a_photo_that_does_not_decode_is_never_kept(client, kept):
    broken = DRESS[: len(DRESS) // 3]
    response = client.post("/search", content=broken, headers={"content-type": "image/jpeg"})
    assert error_code(response, 400) == "invalid_image"
    text = client.post("/search", content=b"<svg></svg>", headers={"content-type": "image/jpeg"})
    assert text.status_code in (400, 415)
    assert not kept.exists() or not any(kept.iterdir())


def test_with_shared_uploads_off_nothing_is_kept_and_an_id_answers_404(service, tmp_path):
    with client_for(service, tmp_path, shared_uploads=False) as client:
        response = client.post("/search", content=DRESS, headers={"content-type": "image/jpeg"})
        assert response.status_code == 200 and response.json()["upload"] is None
        assert error_code(client.post("/search", json={"upload": DRESS_ID}), 404) == "upload_expired"
        assert error_code(client.get(f"/shared-uploads/{DRESS_ID}"), 404) == "upload_expired"
    assert not (tmp_path / "unused-shared-uploads").exists()


def test_by_default_the_photos_are_kept_beside_the_index(service, tmp_path):
    with client_for(service, tmp_path) as client:
        assert client.post("/search", content=DRESS, headers={"content-type": "image/jpeg"}).json()["upload"]
    assert (tmp_path / "unused-shared-uploads" / DRESS_ID).read_bytes() == DRESS
