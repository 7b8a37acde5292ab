"""POST /search and the other routes over a real embedded index: every body type, every documented status."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from live_server import index_folder

from visual_search.core.settings import Settings
from visual_search.server.app import create_app

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
HAT = (PHOTOS / "hat.jpg").read_bytes()
LABELS = {
    "hat.jpg": "Hat",
    "shoes.jpg": "Shoes",
    "dress.jpg": "Dress",
    "shorts.jpg": "Shorts",
    "t-shirt.jpg": "T-Shirt",
    "trousers.jpg": "Pants",
}
MAX_UPLOAD = 200_000


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return index_folder(PHOTOS, tmp_path_factory.mktemp("index") / "idx", labels=LABELS)


@pytest.fixture(scope="module")
def client(service, tmp_path_factory):
    settings = Settings(index=str(tmp_path_factory.mktemp("unused")), max_upload_bytes=MAX_UPLOAD)
    with TestClient(create_app(settings, search_service=service)) as client:
        yield client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert "Traceback" not in response.text and 'File "' not in response.text
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_a_base64_photo_finds_itself_first_with_score_one(client):
    response = client.post("/search", json={"image": b64(HAT), "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "took_ms", "regions", "upload"} and body["took_ms"] > 0
    top = body["results"][0]
    # A catalogue without product columns answers None for each product field.
    assert top == {
        "key": "hat.jpg",
        "score": pytest.approx(1.0, abs=1e-4),
        "url": "/images/hat.jpg",
        "label": "Hat",
        "width": 356,
        "height": 400,
        "attributes": {},
        "title": None,
        "price": None,
        "currency": None,
        "product_url": None,
        "brand": None,
    }
    scores = [result["score"] for result in body["results"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_a_data_url_multipart_upload_and_raw_body_give_the_same_results(client):
    as_json = client.post("/search", json={"image": "data:image/jpeg;base64," + b64(HAT)}).json()["results"]
    multipart = client.post("/search", files={"file": ("hat.jpg", HAT, "image/jpeg")}).json()["results"]
    raw = client.post("/search", content=HAT, headers={"Content-Type": "image/jpeg"}).json()["results"]
    octets = client.post("/search", content=HAT, headers={"Content-Type": "application/octet-stream"}).json()["results"]
    assert as_json == multipart == raw == octets
    assert len(as_json) == 6  # k defaults to 12; the index holds 6


def test_multipart_form_fields_set_k_filters_and_crop(client):
    response = client.post(
        "/search",
        files={"file": ("hat.jpg", HAT, "image/jpeg")},
        data={
            "k": "2",
            "filters": json.dumps({"label": ["Shoes", "Hat"]}),
            "crop": json.dumps({"x": 0, "y": 0, "w": 1, "h": 1}),
        },
    )
    assert response.status_code == 200, response.text
    assert [r["label"] for r in response.json()["results"]] == ["Hat", "Shoes"]


def test_a_key_search_returns_neighbours_without_the_key_itself(client):
    results = client.post("/search", json={"key": "hat.jpg", "k": 10}).json()["results"]
    assert len(results) == 5 and "hat.jpg" not in [r["key"] for r in results]


def test_an_unknown_key_is_not_found(client):
    assert_error(client.post("/search", json={"key": "nope.jpg"}), 404, "not_found")


def test_label_filters_restrict_results_and_an_unknown_label_gives_no_results(client):
    results = client.post("/search", json={"image": b64(HAT), "filters": {"label": ["Dress", "Pants"]}}).json()[
        "results"
    ]
    assert sorted(r["label"] for r in results) == ["Dress", "Pants"]
    empty = client.post("/search", json={"image": b64(HAT), "filters": {"label": ["Spacesuit"]}})
    assert empty.status_code == 200 and empty.json()["results"] == []


def test_a_crop_searches_a_region_so_scores_differ_from_the_whole_photo(client):
    whole = client.post("/search", json={"image": b64(HAT)}).json()["results"]
    region = client.post("/search", json={"image": b64(HAT), "crop": {"x": 0.0, "y": 0.0, "w": 0.3, "h": 0.3}})
    assert region.status_code == 200
    assert region.json()["results"][0]["score"] < whole[0]["score"] - 0.01


@pytest.mark.parametrize(
    "crop",
    [
        {"x": 0.8, "y": 0, "w": 0.5, "h": 0.5},
        {"x": -0.1, "y": 0, "w": 0.5, "h": 0.5},
        {"x": 0, "y": 0, "w": 0, "h": 0.5},
        {"x": 2, "y": 2, "w": 1, "h": 1},
    ],
)
def test_a_crop_outside_the_image_is_an_invalid_request(client, crop):
    assert_error(client.post("/search", json={"image": b64(HAT), "crop": crop}), 400, "invalid_request")


@pytest.mark.parametrize("k", [0, 101, -1, "a", 1.5, True, None, [3]])
def test_k_outside_1_to_100_or_not_a_whole_number_is_a_validation_error(client, k):
    error = assert_error(client.post("/search", json={"image": b64(HAT), "k": k}), 422, "validation_error")
    assert error["message"].startswith("k")


@pytest.mark.parametrize("k", [1, 100])
def test_k_at_its_bounds_is_accepted(client, k):
    response = client.post("/search", json={"key": "hat.jpg", "k": k})
    assert response.status_code == 200 and len(response.json()["results"]) == min(k, 5)


@pytest.mark.parametrize(
    "body",
    [
        {"image": "x", "colour": "red"},
        {"key": "hat.jpg", "filters": {"lable": ["Hat"]}},
        {"key": "hat.jpg", "crop": {"x": 0, "y": 0, "w": 1}},
        {"key": "hat.jpg", "crop": {"x": 0, "y": 0, "w": 1, "h": 1, "z": 1}},
        {"image": 42},
        {"key": "hat.jpg", "filters": {"label": "Hat"}},
    ],
)
def test_extra_missing_or_mistyped_fields_are_validation_errors(client, body):
    assert_error(client.post("/search", json=body), 422, "validation_error")


@pytest.mark.parametrize(
    "body",
    [{}, {"k": 5}, {"image": b64(HAT), "key": "hat.jpg"}, {"image": b64(HAT), "url": "http://example.com/a.jpg"}],
)
def test_zero_or_several_query_sources_are_ambiguous(client, body):
    assert_error(client.post("/search", json=body), 400, "ambiguous_query")


def test_a_file_upload_with_a_key_is_ambiguous(client):
    response = client.post("/search", files={"file": ("hat.jpg", HAT, "image/jpeg")}, data={"key": "hat.jpg"})
    assert_error(response, 400, "ambiguous_query")


@pytest.mark.parametrize("image", ["not base64!", "%%%%", "aGVsbG8=aGVsbG8="])
def test_invalid_base64_is_a_bad_request(client, image):
    assert_error(client.post("/search", json={"image": image}), 400, "invalid_base64")


@pytest.mark.parametrize(
    "image",
    [
        "data:text/plain;base64," + b64(b"hello, world"),
        b64(b"\x00" * 100),
        "",
        "data:image/jpeg;base64," + b64(HAT[:200]),
    ],
)
def test_a_data_url_or_base64_of_a_non_image_is_an_invalid_image(client, image):
    assert_error(client.post("/search", json={"image": image}), 400, "invalid_image")


def test_oversized_base64_raw_and_multipart_images_are_too_large(client):
    big = HAT * (MAX_UPLOAD // len(HAT) + 1)
    assert_error(client.post("/search", json={"image": b64(big)}), 413, "payload_too_large")
    assert_error(client.post("/search", content=big, headers={"Content-Type": "image/jpeg"}), 413, "payload_too_large")
    assert_error(client.post("/search", files={"file": ("big.jpg", big, "image/jpeg")}), 413, "payload_too_large")
    assert_error(client.post("/search", json={"image": b64(big * 3)}), 413, "payload_too_large")  # over the body cap


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_an_unsupported_content_type_is_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    assert_error(client.post("/search", content=b"image=abc", headers=headers), 415, "unsupported_media_type")


def test_an_svg_body_is_an_unsupported_image_type(client):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    assert_error(client.post("/search", content=svg, headers={"Content-Type": "image/svg+xml"}), 415)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_json_that_is_not_an_object_is_a_bad_request(client, body):
    assert_error(client.post("/search", content=body, headers={"Content-Type": "application/json"}), 400)


def test_a_multipart_body_without_a_file_is_a_bad_request(client):
    assert_error(client.post("/search", data={"k": "3"}, files={"other": ("a.txt", b"x", "text/plain")}), 400)


def test_indexed_images_are_served_by_key_and_unknown_keys_are_404(client):
    response = client.get("/images/hat.jpg")
    assert response.status_code == 200 and response.content == HAT
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "image/jpeg"
    assert_error(client.get("/images/nope.jpg"), 404, "not_found")
    assert_error(client.get("/images/../../etc/passwd"), 404)


def test_health_stats_docs_and_config(client):
    assert client.get("/health").json() == {"status": "ok", "model_id": "fake-rgb-histogram-v1"}
    stats = client.get("/stats").json()
    assert stats["count"] == 6 and stats["labels"]["Hat"] == 1 and stats["model_id"] == "fake-rgb-histogram-v1"
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]["/search"]["post"]["requestBody"]["content"]) >= {
        "application/json",
        "multipart/form-data",
        "image/jpeg",
    }
    assert schema["components"]["schemas"]["SearchRequest"]["additionalProperties"] is False
    limits = {
        "maxK": 100,
        "maxUploadBytes": MAX_UPLOAD,
        "maxPixels": 64_000_000,
        "imageTypes": ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff"],
    }
    assert client.get("/config.json").json() == {"apiBase": "", "apiKeyRequired": False, "limits": limits}
    page = client.get("/")
    assert page.status_code == 200 and "<title>Visual search" in page.text


def test_unknown_routes_and_wrong_methods_answer_json_errors(client):
    assert_error(client.get("/no-such-page"), 404, "not_found")
    assert_error(client.delete("/search"), 405, "method_not_allowed")
