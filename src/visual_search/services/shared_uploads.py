"""Shared uploads: query photos kept by their content hash, so that a search link with an uploaded photo can be
copied, reloaded and opened elsewhere until the photo expires.

The photo's id is the sha256 of its bytes (64 lowercase hex digits), so the same photo is kept once, and an id
can never name anything but a file of this store (no path, no suffix: an S3 event or a folder listing never
takes it for a catalogue image). The store is bounded twice: photos older than `max_age_s` are refused (410) and
deleted, and past `max_bytes` the oldest are deleted first. Only photos that a search decoded are kept (the
caller starts keeping a photo once it decoded, beside the search's model step, and waits for it before
answering). Keeping never fails a search: a store that cannot be written is logged and the search answers
without an id.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from visual_search.core.errors import InvalidRequestError, NotFoundError, UploadExpiredError, VisualSearchError
from visual_search.core.hashing import sha256_hex
from visual_search.core.images import SUPPORTED_FORMATS
from visual_search.core.ports import ImageStore

logger = logging.getLogger(__name__)

_UPLOAD_ID = re.compile(r"[0-9a-f]{64}")
SWEEP_INTERVAL_S = 60.0  # how often a keeper re-lists the store even when its own tally is under the limit
# Past the byte limit, eviction goes down to this share of it, so that a full store is listed once per ~10 % of
# its bytes kept rather than on every keep (bench/bench_shared_uploads.py: a sweep of 1,000 photos costs more
# than the search it follows).
LOW_WATER = 0.9
AGAIN = "upload the photo again to search with it"


@dataclass(frozen=True)
class SweepReport:
    expired: int  # deleted for age
    evicted: int  # deleted, oldest first, to get under the byte limit
    kept_bytes: int  # what the store holds afterwards


class SharedUploads:
    """Keeps query photos in `store` under `key_prefix` + their sha256.

    `clock()` gives epoch seconds (a test passes its own); the store's object times are epoch seconds too. Several
    processes may share one store (Lambda containers, a server and a CLI): each keeps its own tally of the bytes
    it added and re-lists the store when the tally passes `max_bytes` or every SWEEP_INTERVAL_S, so the bound is
    exact after every sweep and overshoots by at most what other processes added since their last one.
    """

    def __init__(
        self,
        store: ImageStore,
        *,
        max_bytes: int,
        max_age_s: float,
        key_prefix: str = "",
        clock: Callable[[], float] = time.time,
    ):
        if max_bytes < 1 or max_age_s <= 0:
            raise InvalidRequestError("shared uploads need a positive byte limit and a positive age limit")
        self.store = store
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.key_prefix = key_prefix
        self.clock = clock
        self._lock = threading.Lock()
        self._tally: int | None = None  # bytes in the store as last listed, plus what this process added since
        self._last_sweep = float("-inf")

    def keep(self, data: bytes) -> str | None:
        """Store the photo (again: its age starts over) and return its id; None when it is larger than the whole
        store may hold, or the store cannot be written (logged; the search goes on without an id)."""
        if len(data) > self.max_bytes:
            return None
        upload_id = sha256_hex(data)
        key = self.key_prefix + upload_id
        with self._lock:
            try:
                self.store.put(key, data)
            except (VisualSearchError, OSError) as exc:  # a bucket that refuses, a full or read-only disk
                logger.warning("a shared upload could not be kept: %s", exc)
                return None
            self._tally = (self._tally or 0) + len(data)
            if self._tally > self.max_bytes or self.clock() - self._last_sweep >= SWEEP_INTERVAL_S:
                try:
                    self._sweep(spare=key)
                except (VisualSearchError, OSError) as exc:  # kept, but not swept: the next keep tries again
                    logger.warning("the shared uploads could not be swept: %s", exc)
        return upload_id

    def read(self, upload_id: str) -> bytes:
        """The kept photo. InvalidRequestError (400) for a malformed id, NotFoundError (404, code upload_expired)
        for one not kept, UploadExpiredError (410) for one past its age (deleted on the way)."""
        key = self.key_of(upload_id)
        try:
            stored = self.store.read_object(key)
        except NotFoundError:
            raise NotFoundError(f"this shared photo is no longer kept; {AGAIN}", code="upload_expired") from None
        if stored.modified is not None and self.clock() - stored.modified > self.max_age_s:
            self._forget(key)
            raise UploadExpiredError(
                f"this shared photo expired (photos are kept {_duration(self.max_age_s)}); {AGAIN}"
            )
        if sha256_hex(stored.data) != upload_id:
            # Damaged or replaced behind the store's back: never serve bytes other than those the id names.
            self._forget(key)
            raise NotFoundError(f"this shared photo is no longer kept; {AGAIN}", code="upload_expired")
        return stored.data

    def key_of(self, upload_id: str) -> str:
        """The store key of a well-formed id; InvalidRequestError for anything else (a path, a name, upper case)."""
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise InvalidRequestError(
                "an upload id is the 64 lowercase hex digits of the photo's sha256", code="invalid_upload_id"
            )
        return self.key_prefix + upload_id

    def sweep(self) -> SweepReport:
        """Delete what is past its age; then, past the byte limit, the oldest photos until the store holds at most
        LOW_WATER of it."""
        with self._lock:
            return self._sweep()

    def _sweep(self, spare: str | None = None) -> SweepReport:
        now = self.clock()
        objects = [
            o for o in self.store.list_objects(self.key_prefix) if _UPLOAD_ID.fullmatch(o.key[len(self.key_prefix) :])
        ]
        expired = [o for o in objects if now - o.modified > self.max_age_s and o.key != spare]
        for entry in expired:
            self._forget(entry.key)
        alive = sorted((o for o in objects if o not in expired), key=lambda o: (o.modified, o.key))
        total = sum(o.size for o in alive)
        target = self.max_bytes * LOW_WATER if total > self.max_bytes else self.max_bytes
        evicted = 0
        for entry in alive:
            if total <= target:
                break
            if entry.key == spare:
                continue  # the photo just kept is the newest: it goes last, and it fits on its own
            if self._forget(entry.key):
                total -= entry.size
                evicted += 1
        self._tally = total
        self._last_sweep = now
        return SweepReport(expired=len(expired), evicted=evicted, kept_bytes=total)

    def _forget(self, key: str) -> bool:
        try:
            return self.store.delete(key)
        except (VisualSearchError, OSError) as exc:
            logger.warning("a shared upload could not be deleted: %s", exc)
            return False


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} seconds"


def media_type_of(data: bytes) -> str:
    """The image/* type of a kept photo, from its own header (it decoded once, so it is one of ours)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as image:
            kind = "JPEG" if image.format == "MPO" else image.format or ""  # a phone's multi-picture JPEG
            return Image.MIME.get(kind, "application/octet-stream")
    except (UnidentifiedImageError, OSError, ValueError):
        return "application/octet-stream"
