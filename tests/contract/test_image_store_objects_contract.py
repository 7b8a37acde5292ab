"""read_object and exists, the two ImageStore calls the S3 event path makes (one GET per created object with its
metadata, one HEAD per removal), on the folder and S3 stores alike."""

from __future__ import annotations

import pytest
from test_image_store_contract import store  # noqa: F401 - the two-backend fixture

from visual_search.core.errors import NotFoundError


def test_read_object_gives_the_bytes_and_the_metadata_put_with_them(store):  # noqa: F811
    store.put("meta/item.jpg", b"\xff\xd8item", metadata={"label": "Shoes", "brand": "Acme"})
    obj = store.read_object("meta/item.jpg")
    assert obj.data == b"\xff\xd8item" == store.read("meta/item.jpg")
    from visual_search.stores.s3 import S3ImageStore

    # S3 keeps user metadata (names lower-cased); a folder has nowhere to keep it.
    expected = {"label": "Shoes", "brand": "Acme"} if isinstance(store, S3ImageStore) else {}
    assert dict(obj.metadata) == expected


def test_read_object_of_a_missing_key_is_not_found(store):  # noqa: F811
    with pytest.raises(NotFoundError):
        store.read_object("no/such.jpg")


def test_exists_says_whether_the_object_is_there(store):  # noqa: F811
    store.put("here/now.jpg", b"\xff\xd8x")
    assert store.exists("here/now.jpg") is True
    assert store.delete("here/now.jpg") is True
    assert store.exists("here/now.jpg") is False
    assert store.exists("never/was.jpg") is False
