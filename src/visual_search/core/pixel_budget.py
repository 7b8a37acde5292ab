"""A process-wide bound on the memory that decoded images may hold at once, and the release of that memory.

A 200 kB PNG can decode to 64 MP (256 MB in Pillow's 4-byte RGB), so the upload limit alone does not bound
memory: twenty such uploads at once once took a server to 5 GB. images.decode_image reserves an image's working
memory here before decoding it and the reservation lasts as long as the decoded image does (a weakref
finalizer gives it back when the image is freed). When the budget is spent, a decode waits for up to
`wait_s` and then fails with DecoderBusyError (HTTP 503 with Retry-After), so a burst of huge images queues
briefly or is refused, never stacked up in memory.

Freed images must also leave the process: glibc keeps freed blocks of the size Pillow allocates (16 MB) in its
heaps, where they fragment and are rarely returned. A fixed mmap threshold makes every allocation of 1 MB or more
its own mapping, unmapped when freed; when the last reservation ends after large images, malloc_trim returns
the rest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
import weakref

from visual_search.core.errors import VisualSearchError

DEFAULT_BUDGET_BYTES = 640 * 1024 * 1024  # two 64 MP RGB images (256 MB each) and their smaller companions
DEFAULT_WAIT_S = 10.0  # a server answers 503 busy after this: a shopper is better told to retry than left waiting
BULK_WAIT_S = 3600.0  # a batch job (CLI indexing) queues for memory instead of skipping a large image
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_MMAP_THRESHOLD_BYTES = 1024 * 1024
# malloc_trim walks the whole heap (ONNX Runtime's included): worth it after large images, not after every
# 400 px query photo, whose few small blocks the next query reuses anyway.
_TRIM_AFTER_BYTES = 32 * 1024 * 1024


class DecoderBusyError(VisualSearchError):
    """Too many large images are being decoded at once; the caller should retry shortly."""

    code = "busy"
    http_status = 503


class PixelBudget:
    """Bytes of decoded-image memory, shared by every thread of the process."""

    def __init__(self, capacity_bytes: int = DEFAULT_BUDGET_BYTES, wait_s: float = DEFAULT_WAIT_S):
        self.capacity_bytes = capacity_bytes
        self.wait_s = wait_s
        self._in_use = 0
        self._released_since_trim = 0
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        return self._in_use

    def reserve(self, nbytes: int) -> None:
        """Takes `nbytes` of the budget, waiting up to wait_s. A reservation larger than the whole budget is
        granted when nothing else is decoding, so that any image under the pixel limit can be decoded."""
        deadline = time.monotonic() + self.wait_s
        with self._changed:
            while self._in_use and self._in_use + nbytes > self.capacity_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DecoderBusyError(
                        "the server is decoding as many large images as its memory allows; retry in a few seconds"
                    )
                self._changed.wait(remaining)
            self._in_use += nbytes

    def release(self, nbytes: int) -> None:
        with self._changed:
            self._in_use -= nbytes
            self._released_since_trim += nbytes
            trim = self._in_use == 0 and self._released_since_trim >= _TRIM_AFTER_BYTES
            if trim:
                self._released_since_trim = 0
            self._changed.notify_all()
        if trim:
            _return_free_memory()

    def hold_while_alive(self, owner: object, nbytes: int) -> None:
        """Gives `nbytes` back when `owner` (a decoded image) is garbage-collected."""
        weakref.finalize(owner, self.release, nbytes)


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def _use_mmap_for_large_blocks() -> None:
    if _LIBC is not None and hasattr(_LIBC, "mallopt"):  # glibc only; other allocators return memory anyway
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def _return_free_memory() -> None:
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


_use_mmap_for_large_blocks()
DECODING = PixelBudget()  # the process-wide budget images.decode_image draws on
