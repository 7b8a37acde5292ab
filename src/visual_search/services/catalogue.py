"""Changing the catalogue by item: add one image (stored, then indexed) or delete one, through one writer.

A process holds at most one CatalogueWriter per index: the folder watcher, POST /items and DELETE /items/{key}
all go through it, so their writes never interleave and the embedded index's one-writer rule holds. Images are
written through the ImageStore port: a folder on a laptop, the bucket on AWS, where `index_on_put=False` leaves
indexing to the bucket's own event (one path for every way an image arrives).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

from visual_search.core.errors import InvalidRequestError, NotFoundError, VisualSearchError
from visual_search.core.hashing import sha256_hex
from visual_search.core.images import IMAGE_SUFFIXES, decode_image
from visual_search.core.keys import key_problem, printable
from visual_search.core.ports import ImageStore, VectorIndex
from visual_search.core.records import ImageRecord, Product
from visual_search.core.text_rules import checked_attributes, checked_label
from visual_search.services.indexing import IndexingService, IndexItem, IndexReport

MAX_KEY_LENGTH = 1024
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


class CatalogueWriter:
    """The one writer of an index in this process. `uploads` is where added images are stored; `owned_stores`
    are the stores whose files *are* the catalogue (the uploads, a watched folder): deleting an item deletes its
    file there too, so a rescan does not bring it back. Files elsewhere are left alone."""

    def __init__(
        self,
        indexing: IndexingService,
        uploads: ImageStore,
        *,
        owned_stores: Sequence[ImageStore] = (),
        index_on_put: bool = True,
        key_prefix: str = "",
    ):
        self.indexing = indexing
        self.uploads = uploads
        self.owned_stores = [uploads, *owned_stores]
        self.index_on_put = index_on_put
        # The bucket's images prefix: only objects under it raise the indexing event (and the role may write
        # only there), so an added key is placed under it and a key outside it is not deleted.
        self.key_prefix = key_prefix
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
        """Store `data` under `key` (default: its content hash and format's suffix) and index it. Returns the key
        and the new record (None when the bucket's event will index it). Raises the decoding errors (400/413/415)
        before anything is written, KeyExistsError (409) for a key already indexed; a failure to index removes
        the stored file again, so nothing half-added remains."""
        decoded = decode_image(data, max_pixels=max_pixels)  # refuse non-images and bombs before writing anything
        key = checked_item_key(key or f"{sha256_hex(data)[:16]}.{_SUFFIX_OF_FORMAT.get(decoded.format, 'img')}")
        if not key.startswith(self.key_prefix):
            key = self.key_prefix + key
        label, attributes = checked_label(label), checked_attributes(attributes)  # core/text_rules.py
        product = product or Product()
        with self._lock:
            # In the bucket, an object whose event is still queued is not indexed yet but is taken all the same.
            if self.index.get([key]) or (not self.index_on_put and self.uploads.exists(key)):
                raise KeyExistsError(f"the catalogue already holds {key!r}; delete it first to replace it")
            # The names the bucket's event reads back (aws/catalogue_fields.py): label, product fields, attributes.
            metadata = {
                **attributes,
                **{name: str(value) for name, value in product.as_dict().items() if value is not None},
            }
            if label:
                metadata["label"] = label
            self.uploads.put(key, data, metadata=metadata)
            if not self.index_on_put:
                return key, None
            item = IndexItem(key, self.uploads.uri(key), lambda: data, label, attributes, product=product)
            report = self.indexing.index_items([item])
            if report.failed:
                self.uploads.delete(key)
                raise InvalidRequestError(f"could not index {key!r}: {report.failed[0].reason}", code="index_failed")
            return key, self.index.get([key])[key]

    def delete(self, key: str) -> ImageRecord:
        """Remove the item from the index, then its file from the store that owns it. Raises NotFoundError."""
        with self._lock:
            record = self.index.get([key]).get(key)
            if record is None:
                raise NotFoundError(f"no indexed image has the key {key!r}")
            if not self.index_on_put:
                # On AWS the bucket's ObjectRemoved event removes the record: one path for every deletion.
                if (
                    not key.startswith(self.key_prefix)
                    or _uri_in(self.uploads, key) != record.uri
                    or not self.uploads.delete(key)
                ):
                    raise NotFoundError(f"{key!r} is not an object of the images store")
                return record
            self.indexing.remove([key])
            # The index goes first: a crash in between leaves at most an orphan file, never a record without one.
            for store in self.owned_stores:
                if _uri_in(store, key) == record.uri:
                    store.delete(key)
                    break
            return record


def checked_item_key(key: str) -> str:
    """A key an added item may take: a relative '/'-separated path ending in an image suffix, with no hidden
    part and none of the characters core/keys.py refuses for every key (control characters, invalid UTF-8)."""
    key = (key or "").strip()
    parts = key.split("/")
    if not key or len(key) > MAX_KEY_LENGTH or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidRequestError(f"invalid key '{printable(key[:100])}': use a relative path such as shoes/red-1.jpg")
    if any(part.startswith(".") for part in parts):
        raise InvalidRequestError(f"invalid key '{printable(key[:100])}': no hidden names (a part starting with '.')")
    problem = key_problem(key)  # the one character check of every key (core/keys.py)
    if problem:
        raise InvalidRequestError(f"invalid key '{printable(key[:100])}': {problem}")
    if not key.lower().endswith(IMAGE_SUFFIXES):
        raise InvalidRequestError(
            f"the key '{printable(key[:100])}' must end in an image suffix ({', '.join(IMAGE_SUFFIXES)})"
        )
    return key


def _uri_in(store: ImageStore, key: str) -> str | None:
    try:
        return store.uri(key)
    except InvalidRequestError:
        return None
