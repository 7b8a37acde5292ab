"""What the shared uploads need of an ImageStore (list_objects with sizes and times, read_object's time), and the
shared-uploads service itself under the bucket's shared-uploads/ prefix, on the folder and S3 stores alike."""

from __future__ import annotations

import time

import pytest
from test_image_store_contract import OBJECTS, store  # noqa: F401 - the two-backend fixture

from visual_search.core.errors import NotFoundError, UploadExpiredError
from visual_search.core.hashing import sha256_hex
from visual_search.services.shared_uploads import SharedUploads

PREFIX = "shared-uploads/"


def test_list_objects_gives_every_object_under_the_prefix_with_its_size_and_time(store):  # noqa: F811
    before = time.time()
    store.put("shared-uploads/" + "a" * 64, b"12345")
    listed = {entry.key: entry for entry in store.list_objects("shared-uploads/")}
    assert list(listed) == ["shared-uploads/" + "a" * 64]
    entry = listed["shared-uploads/" + "a" * 64]
    assert entry.size == 5
    assert before - 2 <= entry.modified <= time.time() + 2  # S3 keeps whole seconds
    # Without a prefix: every object, whatever its suffix (the catalogue listing keeps only images).
    assert {key for key in OBJECTS} | set(listed) == {entry.key for entry in store.list_objects()}


def test_read_object_says_when_the_object_was_written(store):  # noqa: F811
    before = time.time()
    store.put("when/item.jpg", b"\xff\xd8x")
    modified = store.read_object("when/item.jpg").modified
    assert modified is not None and before - 2 <= modified <= time.time() + 2


def test_shared_uploads_keep_read_expire_and_evict_on_the_store(store):  # noqa: F811
    offset = {"s": 0.0}
    shared = SharedUploads(
        store, key_prefix=PREFIX, max_bytes=2000, max_age_s=3600, clock=lambda: time.time() + offset["s"]
    )
    first = shared.keep(b"1" * 1000)
    assert first == sha256_hex(b"1" * 1000)
    assert shared.read(first) == b"1" * 1000
    second = shared.keep(b"2" * 1000)
    third = shared.keep(b"3" * 1000)  # over 2000 bytes: the older ones go, down to 90 % of the limit
    kept = {entry.key.removeprefix(PREFIX) for entry in store.list_objects(PREFIX)}
    assert kept == {third}, (first, second)
    # Nothing of the catalogue was touched.
    assert all(store.read(key) == data for key, data in OBJECTS.items())
    offset["s"] = 3700
    with pytest.raises(UploadExpiredError):
        shared.read(third)
    with pytest.raises(NotFoundError):
        shared.read(third)  # deleted on the way
    assert shared.sweep().kept_bytes == 0
    assert list(store.list_objects(PREFIX)) == []
