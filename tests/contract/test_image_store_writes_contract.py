"""The writing half of the ImageStore contract (POST /items, DELETE /items/{key}), on the folder and S3 stores."""

from __future__ import annotations

import pytest
from test_image_store_contract import store  # noqa: F401 - the two-backend fixture

from visual_search.core.errors import InvalidRequestError, NotFoundError


def test_a_put_object_is_listed_and_reads_back(store):  # noqa: F811
    store.put("new/item.jpg", b"\xff\xd8new", metadata={"label": "Shoes"})
    assert "new/item.jpg" in list(store.list_keys())
    assert store.read("new/item.jpg") == b"\xff\xd8new"


def test_a_put_replaces_an_object_of_the_same_key(store):  # noqa: F811
    store.put("a/one.jpg", b"\xff\xd8replaced")
    assert store.read("a/one.jpg") == b"\xff\xd8replaced"


def test_delete_removes_the_object_and_says_whether_there_was_one(store):  # noqa: F811
    assert store.delete("a/one.jpg") is True
    assert "a/one.jpg" not in list(store.list_keys())
    with pytest.raises(NotFoundError):
        store.read("a/one.jpg")
    assert store.delete("a/one.jpg") is False


def test_a_put_leaves_no_partial_file_behind(store):  # noqa: F811
    before = set(store.list_keys())
    store.put("c/whole.png", b"\x89PNGwhole")
    assert set(store.list_keys()) == before | {"c/whole.png"}


def test_the_folder_store_refuses_keys_that_leave_its_folder(tmp_path):
    from visual_search.stores.local_folder import LocalFolderStore

    folder_store = LocalFolderStore(tmp_path / "root")
    for key in ("../escape.jpg", "/etc/passwd.jpg", "a/../../b.jpg"):
        with pytest.raises(InvalidRequestError):
            folder_store.put(key, b"x")
    assert not (tmp_path / "escape.jpg").exists()


def test_metadata_of_any_text_reads_back_and_s3s_2_kb_bound_is_a_400(store):  # noqa: F811
    """Issue 22: botocore refuses non-ASCII metadata with its own error (a 500 on AWS); S3 keeps 2 KB of it."""
    fields = {"label": "Chaussures", "title": "Chaussures d'été — 日本", "brand": "=?not-encoded?="}
    store.put("meta/item.jpg", b"\xff\xd8meta", metadata=fields)
    read = store.read_object("meta/item.jpg")
    if not store.uri("meta/item.jpg").startswith("s3://"):
        return  # a folder keeps no metadata (the index record holds the fields): nothing to read back or bound
    assert {name: read.metadata[name] for name in fields} == fields
    with pytest.raises(InvalidRequestError, match="2,048"):
        store.put("meta/big.jpg", b"\xff\xd8big", metadata={f"attr{n}": "x" * 100 for n in range(30)})
