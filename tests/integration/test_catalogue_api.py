"""The catalogue routes (GET/POST /items, DELETE /items/{key}, GET /duplicates) on the real model, over the
embedded index and a real OpenSearch node."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from live_server import index_folder
from PIL import Image

from visual_search.bootstrap import build_embedder
from visual_search.core.settings import Settings
from visual_search.server.app import create_app
from visual_search.services.search import SearchService

FIXTURE_PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
KEY = "operator-key-for-tests"
LABELS = {
    "dress.jpg": "Dress",
    "hat.jpg": "Hat",
    "shoes.jpg": "Shoes",
    "shorts.jpg": "Shorts",
    "t-shirt.jpg": "T-Shirt",
    "trousers.jpg": "Pants",
}


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(Settings(), bulk=True)


def jpeg_of(name: str, *, scale: float = 1.0, mirror: bool = False, quality: int = 90) -> bytes:
    image = Image.open(FIXTURE_PHOTOS / name).convert("RGB")
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)))
    if mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def client_for(service, tmp_path, *, api_key: str | None = KEY) -> TestClient:
    settings = Settings(index=str(tmp_path / "idx"), api_key=api_key, image_store=str(tmp_path / "uploads"))
    return TestClient(create_app(settings, search_service=service, frontend_dir=tmp_path / "no-frontend"))


@pytest.fixture
def embedded(tmp_path, embedder):
    service = index_folder(FIXTURE_PHOTOS, tmp_path / "idx", embedder, LABELS)
    yield service, tmp_path
    service.index.close()


@pytest.fixture
def opensearch(tmp_path, embedder, opensearch_url):
    from visual_search.indexes.opensearch.index import OpenSearchIndex

    index = OpenSearchIndex(
        f"{opensearch_url}/issue15-catalogue-{uuid.uuid4().hex[:8]}",
        model_id=embedder.model_id,
        dimension=embedder.dimension,
    )
    yield SearchService(embedder, index), tmp_path
    index.drop()


def add(client, data: bytes, headers=None, **fields):
    return client.post(
        "/items",
        files={"file": ("photo.jpg", data, "image/jpeg")},
        data=fields,
        headers={"X-API-Key": KEY} if headers is None else headers,
    )


def test_items_pages_by_key_filters_by_label_and_counts_labels(embedded):
    service, tmp_path = embedded
    with client_for(service, tmp_path) as client:
        assert client.get("/items").status_code == 401  # reading needs the key when one is set, like /search
        first = client.get("/items?limit=4", headers={"X-API-Key": KEY}).json()
        rest = client.get("/items?offset=4&limit=4", headers={"X-API-Key": KEY}).json()
        hats = client.get("/items?label=Hat", headers={"X-API-Key": KEY}).json()
        bad = client.get("/items?limit=0", headers={"X-API-Key": KEY})
    assert [item["key"] for item in first["items"] + rest["items"]] == sorted(LABELS)
    assert first["total"] == 6 and first["label_counts"] == {label: 1 for label in LABELS.values()}
    assert first["items"][0]["url"] == "/images/dress.jpg" and first["items"][0]["label"] == "Dress"
    assert [item["key"] for item in hats["items"]] == ["hat.jpg"] and hats["total"] == 1
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_writes_answer_403_without_any_configured_key_and_401_without_the_right_one(embedded):
    service, tmp_path = embedded
    with client_for(service, tmp_path, api_key=None) as open_server:
        refused = add(open_server, jpeg_of("hat.jpg"), headers={})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "writes_disabled"
        assert open_server.delete("/items/hat.jpg").status_code == 403
        assert open_server.get("/items").status_code == 200  # reading stays open, like /search
    with client_for(service, tmp_path) as keyed:
        assert add(keyed, jpeg_of("hat.jpg"), headers={"X-API-Key": "wrong"}).status_code == 401
        assert keyed.delete("/items/hat.jpg").status_code == 401
    assert service.index.count() == 6


def run_add_find_delete(service, tmp_path):
    with client_for(service, tmp_path) as client:
        shoes_before = client.get("/items?label=Shoes", headers={"X-API-Key": KEY}).json()["total"]
        photo = jpeg_of("shoes.jpg", scale=0.8, mirror=True)
        added = add(
            client,
            photo,
            key="new/boot.jpg",
            label="Shoes",
            title="Boot",
            price="59.90",
            currency="EUR",
            product_url="https://shop.example/boot",
            attributes=json.dumps({"colour": "brown"}),
        )
        assert added.status_code == 201, added.text
        body = added.json()
        assert (body["key"], body["label"], body["title"], body["price"]) == ("new/boot.jpg", "Shoes", "Boot", 59.9)
        assert body["attributes"] == {"colour": "brown"}
        found = client.post(
            "/search", files={"file": ("q.jpg", photo, "image/jpeg")}, data={"k": "1"}, headers={"X-API-Key": KEY}
        ).json()
        assert found["results"][0]["key"] == "new/boot.jpg" and found["results"][0]["score"] > 0.999
        assert (tmp_path / "uploads" / "new" / "boot.jpg").read_bytes() == photo

        taken = add(client, jpeg_of("hat.jpg"), key="new/boot.jpg")
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "key_exists"

        deleted = client.delete("/items/new/boot.jpg", headers={"X-API-Key": KEY})
        assert deleted.status_code == 200 and deleted.json() == {"deleted": "new/boot.jpg"}
        assert not (tmp_path / "uploads" / "new" / "boot.jpg").exists()
        assert client.delete("/items/new/boot.jpg", headers={"X-API-Key": KEY}).status_code == 404
        assert client.get("/items?label=Shoes", headers={"X-API-Key": KEY}).json()["total"] == shoes_before


def test_add_find_and_delete_an_item_on_the_embedded_index(embedded):
    run_add_find_delete(*embedded)


@pytest.mark.opensearch
def test_add_find_and_delete_an_item_on_opensearch(opensearch):
    run_add_find_delete(*opensearch)


@pytest.mark.parametrize(
    "data, fields, status, code",
    [
        (b"not an image at all", {}, 400, "invalid_image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", {}, 400, None),
        (None, {"price": "cheap"}, 400, "invalid_product"),
        (None, {"product_url": "javascript:alert(1)"}, 400, "invalid_product"),
        (None, {"key": "../escape.jpg"}, 400, "invalid_request"),
        (None, {"key": "notes.txt"}, 400, "invalid_request"),
        (None, {"colour": "red"}, 422, "validation_error"),
        (None, {"attributes": "[1, 2]"}, 422, "validation_error"),
    ],
)
def test_bad_items_are_refused_and_change_nothing(embedded, data, fields, status, code):
    service, tmp_path = embedded
    with client_for(service, tmp_path) as client:
        response = add(client, jpeg_of("hat.jpg", scale=0.5) if data is None else data, **fields)
    assert response.status_code in (status, 415) and "error" in response.json()
    if code:
        assert response.json()["error"]["code"] == code
    assert service.index.count() == 6
    assert not [path for path in (tmp_path / "uploads").rglob("*") if path.is_file()]


def test_an_upload_over_the_limit_is_a_413(embedded):
    service, tmp_path = embedded
    settings = Settings(
        index=str(tmp_path / "idx"), api_key=KEY, image_store=str(tmp_path / "uploads"), max_upload_bytes=20_000
    )
    with TestClient(create_app(settings, search_service=service, frontend_dir=tmp_path / "none")) as client:
        response = add(client, jpeg_of("dress.jpg", quality=95))
    assert response.status_code == 413
    assert service.index.count() == 6


def test_duplicates_group_a_resized_recompressed_copy_with_its_original(embedded):
    service, tmp_path = embedded
    with client_for(service, tmp_path) as client:
        assert (
            add(client, jpeg_of("trousers.jpg", scale=0.8, quality=80), key="copy-of-trousers.jpg").status_code == 201
        )
        report = client.get("/duplicates", headers={"X-API-Key": KEY}).json()
        assert client.get("/duplicates?threshold=2", headers={"X-API-Key": KEY}).status_code == 400
        assert client.get("/duplicates").status_code == 401
    assert report["images_scanned"] == 7
    groups = [sorted(item["key"] for item in group["items"]) for group in report["groups"]]
    assert groups == [["copy-of-trousers.jpg", "trousers.jpg"]]
    assert all(item["score"] >= report["threshold"] for item in report["groups"][0]["items"])
