"""One ImageStore contract, run against the local folder store and the S3 store (moto, in-process)."""

from __future__ import annotations

import pytest

from visual_search.core.errors import NotFoundError
from visual_search.stores.local_folder import LocalFolderStore
from visual_search.stores.s3 import S3ImageStore

OBJECTS = {
    "a/one.jpg": b"\xff\xd8one",
    "a/two.PNG": b"\x89PNGtwo",
    "b/three.webp": b"RIFFthree",
    "b/notes.txt": b"not an image",
    "readme.md": b"# not an image",
    "top.tiff": b"II*\x00top",
}
IMAGE_KEYS = ["a/one.jpg", "a/two.PNG", "b/three.webp", "top.tiff"]


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch):
    if request.param == "local":
        for key, data in OBJECTS.items():
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(data)
        yield LocalFolderStore(tmp_path)
        return
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3_store = S3ImageStore("catalogue", region_name="us-east-1")
        s3_store.client.create_bucket(Bucket="catalogue")
        for key, data in OBJECTS.items():
            s3_store.client.put_object(Bucket="catalogue", Key=key, Body=data)
        yield s3_store


def test_list_keys_gives_only_image_files_in_a_stable_sorted_order(store):
    assert list(store.list_keys()) == IMAGE_KEYS


def test_a_prefix_narrows_the_listing(store):
    assert list(store.list_keys("b/")) == ["b/three.webp"]
    assert list(store.list_keys("nowhere/")) == []


def test_every_listed_key_reads_back_its_bytes(store):
    assert {key: store.read(key) for key in store.list_keys()} == {key: OBJECTS[key] for key in IMAGE_KEYS}


def test_an_unknown_key_is_not_found(store):
    with pytest.raises(NotFoundError):
        store.read("a/missing.jpg")


def test_uri_and_url_name_the_object(store):
    assert store.uri("a/one.jpg").endswith("a/one.jpg")
    assert "a/one.jpg" in store.url_for("a/one.jpg")
