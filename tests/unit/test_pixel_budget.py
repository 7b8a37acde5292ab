"""The process-wide decoding budget: reservations wait, time out as a 503, outlive nothing, and decode_image's
size and corruption messages are our own words with our own limit (issue 13, finding 7 and the messages)."""

from __future__ import annotations

import gc
import io
import struct
import threading
import time
import zlib

import pytest
from PIL import Image

from visual_search.core.errors import ImageTooLargeError, InvalidImageError
from visual_search.core.images import DEFAULT_MAX_PIXELS, decode_image
from visual_search.core.pixel_budget import DECODING, DecoderBusyError, PixelBudget


def test_a_reservation_over_the_free_budget_waits_then_fails_as_busy():
    budget = PixelBudget(capacity_bytes=100, wait_s=0.3)
    budget.reserve(80)
    started = time.monotonic()
    with pytest.raises(DecoderBusyError) as caught:
        budget.reserve(30)
    assert caught.value.http_status == 503 and 0.25 < time.monotonic() - started < 2
    assert budget.in_use == 80


def test_a_waiting_reservation_proceeds_when_another_is_released():
    budget = PixelBudget(capacity_bytes=100, wait_s=5)
    budget.reserve(80)
    threading.Timer(0.2, budget.release, args=(80,)).start()
    budget.reserve(50)
    assert budget.in_use == 50


def test_one_image_larger_than_the_whole_budget_is_decoded_when_nothing_else_is():
    budget = PixelBudget(capacity_bytes=100, wait_s=0.1)
    budget.reserve(500)
    with pytest.raises(DecoderBusyError):
        budget.reserve(1)
    budget.release(500)
    assert budget.in_use == 0


def test_a_decoded_image_holds_its_reservation_until_it_is_freed():
    before = DECODING.in_use
    decoded = decode_image(_png(Image.new("RGB", (1000, 1000), "red")))
    assert DECODING.in_use >= before + 1000 * 1000 * 4
    del decoded
    gc.collect()
    assert DECODING.in_use == before


def test_a_corrupt_image_gives_its_reservation_back():
    before = DECODING.in_use
    data = _png(Image.new("RGB", (500, 500), "red"))
    with pytest.raises(InvalidImageError) as caught:
        decode_image(data[: len(data) // 2])
    assert DECODING.in_use == before
    assert "Error" not in caught.value.message and ":" not in caught.value.message  # no "OSError: decoder..."


@pytest.mark.parametrize("side", [9000, 13000, 20000])  # 81 MP (ours), 169 MP (Pillow's warning), 400 MP (its error)
def test_too_many_pixels_is_our_message_with_our_limit(side):
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(_png_header_only(side, side))
    message = caught.value.message
    assert f"{DEFAULT_MAX_PIXELS:,} pixels" in message, message
    assert "decompression bomb" not in message.lower() and "DOS" not in message


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size in IHDR and then holds one tiny compressed row: enough for Image.open."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 4)) + chunk(b"IEND", b"")
    )
