"""Changing the catalogue by item: add one image (stored, then indexed) or delete one, through one writer.

A process holds at most one writer per index: the folder watcher, POST /items and DELETE /items/{key} all go
through it, so their writes never interleave and the embedded index's one-writer rule holds. Images are written
through the ImageStore port: a folder on a laptop (IndexingWriter: stored, then indexed), the bucket on AWS
(BucketWriter: stored; the bucket's own event indexes it, one path for every way an image arrives).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from visual_search.core.errors import InvalidRequestError, NotFoundError, VisualSearchError
from visual_search.core.hashing import sha256_hex
from visual_search.core.images import decode_image
from visual_search.core.keys import MAX_KEY_LENGTH, key_problem, printable
from visual_search.core.ports import ImageStore, VectorIndex
from visual_search.core.records import ImageRecord, Product
from visual_search.core.text_rules import checked_attributes, checked_label
from visual_search.services.indexing import IndexingService, IndexItem, IndexReport

_SUFFIX_OF_FORMAT = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
}


class KeyExistsError(VisualSearchError):
    """Adding an item under a key the catalogue already holds: replacing it must be a deliberate delete first."""

    code = "key_exists"
    http_status = 409


class CatalogueWriter(Protocol):
    """Adds and deletes catalogue items: IndexingWriter on a laptop, BucketWriter on AWS."""

    @property
    def index(self) -> VectorIndex: ...

    def add(
        self,
        data: bytes,
        key: str | None,
        *,
        label: str | None = None,
        attributes: Mapping[str, str] | None = None,
        product: Product | None = None,
        max_pixels: int,
    ) -> tuple[str, ImageRecord | None]:
        """Store `data` under `key` (default: its content hash and format's suffix). Returns the key and the new
        record (None when the bucket's event will index it). Raises the decoding errors (400/413/415) before
        anything is written, KeyExistsError (409) for a key already taken."""

    def delete(self, key: str) -> ImageRecord:
        """Remove the item; raises NotFoundError."""


class IndexingWriter:
    """The one writer of an index in this process (a laptop): it embeds and indexes what it stores. `uploads` is
    where added images are stored; `owned_stores` are the stores whose files *are* the catalogue (the uploads, a
    watched folder): deleting an item deletes its file there too, so a rescan does not bring it back. Files
    elsewhere are left alone. The folder watcher writes through it too, so writes never interleave."""

    def __init__(self, indexing: IndexingService, uploads: ImageStore, *, owned_stores: Sequence[ImageStore] = ()):
        self.indexing = indexing
        self.uploads = uploads
        self.owned_stores = [uploads, *owned_stores]
        self._lock = threading.RLock()

    @property
    def index(self) -> VectorIndex:
        return self.indexing.index

    def index_items(self, items: Iterable[IndexItem]) -> IndexReport:
        with self._lock:
            return self.indexing.index_items(items)

    def remove(self, keys: Sequence[str]) -> int:
        with self._lock:
            return self.indexing.remove(keys)

    def add(
        self,
        data: bytes,
        key: str | None,
        *,
        label: str | None = None,
        attributes: Mapping[str, str] | None = None,
        product: Product | None = None,
        max_pixels: int,
    ) -> tuple[str, ImageRecord | None]:
        """Store and index; a failure to index removes the stored file again, so nothing half-added remains."""
        key, label, attributes = _checked_item(data, key, label, attributes, max_pixels=max_pixels)
        product = product or Product()
        with self._lock:
            if self.index.get([key]):
                raise KeyExistsError(f"the catalogue already holds {key!r}; delete it first to replace it")
            self.uploads.put(key, data, metadata=item_metadata(label, attributes, product))
            item = IndexItem(key, self.uploads.uri(key), lambda: data, label, dict(attributes or {}), product=product)
            report = self.indexing.index_items([item])
            if report.failed:
                self.uploads.delete(key)
                raise InvalidRequestError(f"could not index {key!r}: {report.failed[0].reason}", code="index_failed")
            return key, self.index.get([key])[key]

    def delete(self, key: str) -> ImageRecord:
        """Remove the item from the index, then its file from the store that owns it."""
        with self._lock:
            record = _indexed(self.index, key)
            self.indexing.remove([key])
            # The index goes first: a crash in between leaves at most an orphan file, never a record without one.
            for store in self.owned_stores:
                if _uri_in(store, key) == record.uri:
                    store.delete(key)
                    break
            return record


class BucketWriter:
    """Writes to the images bucket only (AWS): the bucket's own events index and remove, so every way an image
    arrives or leaves takes one path. Added keys are placed under the bucket's `key_prefix` (only objects there
    raise the indexing event, and the role may write only there); a key outside it is not deleted."""

    def __init__(self, index: VectorIndex, bucket: ImageStore):
        self._index = index
        self.bucket = bucket
        self._lock = threading.Lock()

    @property
    def index(self) -> VectorIndex:
        return self._index

    def add(
        self,
        data: bytes,
        key: str | None,
        *,
        label: str | None = None,
        attributes: Mapping[str, str] | None = None,
        product: Product | None = None,
        max_pixels: int,
    ) -> tuple[str, ImageRecord | None]:
        key, label, attributes = _checked_item(data, key, label, attributes, max_pixels=max_pixels)
        if not key.startswith(self.bucket.key_prefix):
            key = self.bucket.key_prefix + key
        with self._lock:
            # An object whose event is still queued is not indexed yet but is taken all the same.
            if self.index.get([key]) or self.bucket.exists(key):
                raise KeyExistsError(f"the catalogue already holds {key!r}; delete it first to replace it")
            self.bucket.put(key, data, metadata=item_metadata(label, attributes, product or Product()))
            return key, None

    def delete(self, key: str) -> ImageRecord:
        """Deletes the object; its ObjectRemoved event removes the record."""
        with self._lock:
            record = _indexed(self.index, key)
            prefix = self.bucket.key_prefix
            if not key.startswith(prefix) or _uri_in(self.bucket, key) != record.uri or not self.bucket.delete(key):
                raise NotFoundError(f"{key!r} is not an object of the images store")
            return record


def _checked_item(
    data: bytes, key: str | None, label: str | None, attributes: Mapping[str, str] | None, *, max_pixels: int
) -> tuple[str, str | None, Mapping[str, str]]:
    """What both writers check before writing anything: the image and its key, then the label and attributes by
    the text rules (core/text_rules.py)."""
    return new_item_key(data, key, max_pixels=max_pixels), checked_label(label), checked_attributes(attributes)


def new_item_key(data: bytes, key: str | None, *, max_pixels: int) -> str:
    """The checked key of an image about to be added: `key`, or its content hash and format's suffix. Decodes
    `data` first, refusing non-images and bombs before anything is written."""
    decoded = decode_image(data, max_pixels=max_pixels)
    return checked_item_key(key or f"{sha256_hex(data)[:16]}.{_SUFFIX_OF_FORMAT.get(decoded.format, 'img')}")


def item_metadata(label: str | None, attributes: Mapping[str, str] | None, product: Product) -> dict[str, str]:
    """What travels with a stored image, under the names the bucket's event reads back (catalogue_fields.py)."""
    metadata = {
        **(attributes or {}),
        **{name: str(value) for name, value in product.as_dict().items() if value is not None},
    }
    if label:
        metadata["label"] = label
    return metadata


def _indexed(index: VectorIndex, key: str) -> ImageRecord:
    record = index.get([key]).get(key)
    if record is None:
        raise NotFoundError(f"no indexed image has the key {key!r}")
    return record


def checked_item_key(key: str) -> str:
    """A key an added item may take: what the one key check of every entry accepts (core/keys.py: characters,
    size, a relative path with no hidden part, an image suffix). Raises InvalidRequestError saying why not."""
    key = (key or "").strip()
    problem = f"it is longer than {MAX_KEY_LENGTH} characters" if len(key) > MAX_KEY_LENGTH else key_problem(key)
    if problem:
        raise InvalidRequestError(f"invalid key '{printable(key[:100])}': {problem}")
    return key


def _uri_in(store: ImageStore, key: str) -> str | None:
    try:
        return store.uri(key)
    except InvalidRequestError:
        return None
