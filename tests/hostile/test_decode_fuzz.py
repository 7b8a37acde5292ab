"""Bounded fuzzing of the decode + preprocess path: any bytes give a model-ready image or a documented error, fast.

The documented errors are decode_image's: InvalidImageError (400), UnsupportedImageTypeError (415) and
ImageTooLargeError (413). Anything else (an OSError, ValueError, MemoryError, a numpy error) escaping
decode_image or to_model_input would be a 500 in the API and a traceback in the CLI. Each example must also
finish within EXAMPLE_TIME_S: a crafted file must not hold a worker.

Runs are random locally and derandomized under CI=true, so CI is reproducible.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from corpus import encode, real_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from visual_search.core.errors import ImageTooLargeError, InvalidImageError, UnsupportedImageTypeError
from visual_search.core.images import PreprocessSpec, decode_image, to_model_input

DOCUMENTED_ERRORS = (InvalidImageError, UnsupportedImageTypeError, ImageTooLargeError)
EXAMPLE_TIME_S = 2.0
SPEC = PreprocessSpec(size_px=260)

FUZZ = settings(
    max_examples=300,
    deadline=EXAMPLE_TIME_S * 1000,
    derandomize=os.environ.get("CI", "").lower() == "true",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

pytestmark = pytest.mark.timeout(240)


def _seeds() -> dict[str, bytes]:
    """Small real files of every supported format (and a few odd modes), to mutate."""
    photo = real_image().resize((96, 72))
    exif = Image.Exif()
    exif[0x0112] = 8
    return {
        "jpeg": encode(photo, "JPEG", quality=80),
        "jpeg_progressive_exif": encode(photo, "JPEG", progressive=True, exif=exif),
        "png": encode(photo, "PNG"),
        "png_rgba": encode(photo.convert("RGBA"), "PNG"),
        "png_palette": encode(photo.convert("P"), "PNG", transparency=3),
        "png_16bit": encode(Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257), "PNG"),
        "gif": encode(photo.convert("P"), "GIF", save_all=True, append_images=[photo.convert("P").rotate(90)]),
        "webp": encode(photo, "WEBP"),
        "bmp": encode(photo, "BMP"),
        "tiff": encode(photo, "TIFF"),
        "tiff_cmyk": encode(photo.convert("CMYK"), "TIFF"),
    }


SEEDS = _seeds()


def check_decode(data: bytes) -> None:
    """Decode like the services do (draft mode at the model size), preprocess, and check the outcome and time."""
    started = time.perf_counter()
    try:
        decoded = decode_image(data, min_size_px=SPEC.size_px)
    except DOCUMENTED_ERRORS as error:
        assert error.message and error.http_status in (400, 413, 415)
        outcome = "error"
    else:
        assert decoded.image.mode == "RGB" and decoded.width >= 1 and decoded.height >= 1
        tensor = to_model_input(decoded.image, SPEC)
        assert tensor.shape == (3, SPEC.size_px, SPEC.size_px) and tensor.dtype == np.float32
        assert np.isfinite(tensor).all()
        outcome = "image"
    elapsed = time.perf_counter() - started
    assert elapsed < EXAMPLE_TIME_S, f"{outcome} after {elapsed:.2f} s for {len(data)} bytes starting {data[:16]!r}"


@st.composite
def mutated_seed(draw) -> bytes:
    """A real file with a few bytes flipped, overwritten, deleted or inserted, or truncated, or spliced."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate", "splice"]))
        # Mutations favour the header, where a flipped byte changes sizes, modes and chunk lengths.
        position = draw(st.one_of(st.integers(0, min(len(data) - 1, 64)), st.integers(0, len(data) - 1)))
        if kind == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[position] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "truncate":
            del data[position:]
        else:
            other = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
            data[position:] = other[draw(st.integers(0, len(other) - 1)) :]
    return bytes(data)


@st.composite
def magic_then_noise(draw) -> bytes:
    """A valid format signature (so the format's own parser runs) followed by random bytes."""
    magic = draw(
        st.sampled_from(
            [
                b"\xff\xd8\xff\xe0",
                b"\x89PNG\r\n\x1a\n",
                b"GIF89a",
                b"GIF87a",
                b"RIFF\x00\x00\x00\x00WEBPVP8 ",
                b"BM",
                b"II*\x00",
                b"MM\x00*",
                b"\x00\x00\x01\x00",
                b"<?xml",
                b"<svg",
                b"%PDF-",
            ]
        )
    )
    return magic + draw(st.binary(max_size=2048))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_raise_a_documented_error(data):
    check_decode(data)


@FUZZ
@given(magic_then_noise())
def test_format_signature_then_noise_decodes_or_raises_a_documented_error(data):
    check_decode(data)


@FUZZ
@given(mutated_seed())
def test_mutated_real_files_decode_or_raise_a_documented_error(data):
    check_decode(data)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_itself_decodes(name):
    # The mutations start from valid files: if a seed did not decode, the fuzz would test only error paths.
    decoded = decode_image(SEEDS[name], min_size_px=SPEC.size_px)
    assert (decoded.width, decoded.height) in ((96, 72), (72, 96))
