"""Decoding and preprocessing: every mode becomes RGB, orientation is applied, bad bytes give documented errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from visual_search.core.errors import (
    ImageTooLargeError,
    InvalidImageError,
    InvalidRequestError,
    UnsupportedImageTypeError,
)
from visual_search.core.hashing import sha256_hex
from visual_search.core.images import (
    CropBox,
    PreprocessSpec,
    crop_image,
    decode_image,
    normalise_pixels,
    to_model_input,
    to_model_pixels,
)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_rgba_transparency_becomes_white():
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    decoded = decode_image(encode(image, "PNG"))
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)


def test_half_transparent_pixels_blend_on_white():
    decoded = decode_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 128)), "PNG"))
    red, green, blue = decoded.image.getpixel((1, 1))
    assert 120 <= red <= 135 and red == green == blue


def test_palette_with_transparency_and_la_become_rgb_on_white():
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 20, 30] * 256)
    palette.info["transparency"] = 0
    assert decode_image(encode(palette, "PNG", transparency=0)).image.getpixel((0, 0)) == (255, 255, 255)
    assert decode_image(encode(Image.new("LA", (4, 4), (50, 255)), "PNG")).image.getpixel((0, 0)) == (50, 50, 50)


def test_sixteen_bit_grey_is_scaled_not_clipped():
    array = np.full((6, 6), 32768, dtype=np.uint16)
    decoded = decode_image(encode(Image.fromarray(array), "PNG"))
    red, green, blue = decoded.image.getpixel((0, 0))
    assert 126 <= red <= 129 and red == green == blue


def test_cmyk_jpeg_becomes_rgb():
    decoded = decode_image(encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"))
    assert decoded.image.mode == "RGB"
    red, green, blue = decoded.image.getpixel((8, 8))
    assert red > 200 and green < 60 and blue < 60


def test_exif_orientation_is_applied_and_reported_size_is_oriented():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert (decoded.width, decoded.height) == (20, 40)
    assert decoded.image.size == (20, 40)
    red, _, blue = decoded.image.getpixel((10, 5))  # the red half is now on top
    assert red > 200 and blue < 60


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    red, green, _ = decode_image(data).image.getpixel((4, 4))
    assert red > 200 and green < 60


def test_large_jpeg_is_decoded_at_reduced_scale_but_reports_full_size():
    data = encode(Image.new("RGB", (4000, 3000), (90, 120, 30)), "JPEG")
    decoded = decode_image(data, min_size_px=260)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert min(decoded.image.size) >= 260 and decoded.image.size[0] <= 1000


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", InvalidImageError),
        (b"\x00" * 100, InvalidImageError),
        (b"<html><body>hello</body></html>", InvalidImageError),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', UnsupportedImageTypeError),
    ],
)
def test_non_images_raise_documented_errors(data, error):
    with pytest.raises(error):
        decode_image(data)


def test_truncated_jpeg_is_reported_as_invalid():
    data = encode(Image.effect_noise((300, 300), 64).convert("RGB"), "JPEG")
    with pytest.raises(InvalidImageError):
        decode_image(data[: len(data) // 2])


def test_known_but_unsupported_format_is_415():
    with pytest.raises(UnsupportedImageTypeError, match="ICO"):
        decode_image(encode(Image.new("RGB", (16, 16)), "ICO"))


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (30000, 30000), 0), "PNG", optimize=True)
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageTooLargeError):
        decode_image(bomb)


@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
def test_model_input_is_normalised_chw_float32(policy):
    spec = PreprocessSpec(size_px=32, mean=(127.0,) * 3, std=(128.0,) * 3, resize=policy)
    tensor = to_model_input(Image.new("RGB", (64, 40), (255, 127, 0)), spec)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == np.float32
    assert tensor[0, 16, 16] == pytest.approx(1.0, abs=1e-3)
    assert tensor[1, 16, 16] == pytest.approx(0.0, abs=1e-3)
    assert tensor[2, 16, 16] == pytest.approx(-127 / 128, abs=1e-3)


def test_model_input_is_the_normalised_model_pixels_to_the_last_bit():
    """Queries normalise one tensor, indexing a batch of pixels in the embedder: both are normalise_pixels,
    (x - mean) * (1 / std) in float32, for any mean and std (here ImageNet's, which are not exact in binary)."""
    spec = PreprocessSpec(size_px=24, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), resize="squash")
    image = Image.fromarray(np.random.default_rng(5).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    pixels = to_model_pixels(image, spec)
    assert pixels.shape == (24, 24, 3) and pixels.dtype == np.uint8
    expected = (pixels.transpose(2, 0, 1).astype(np.float32) - np.asarray(spec.mean, np.float32)[:, None, None]) * (
        np.float32(1) / np.asarray(spec.std, np.float32)
    )[:, None, None]
    assert np.array_equal(to_model_input(image, spec), expected)
    block = np.full((4, 3, 24, 24), np.nan, np.float32)
    written = normalise_pixels([pixels, pixels], spec, out=block)
    assert written.base is block and np.array_equal(written[1], expected) and np.isnan(block[2:]).all()


def test_normalising_refuses_pixels_that_are_not_the_models_size():
    spec = PreprocessSpec(size_px=24)
    with pytest.raises(ValueError, match=r"uint8 pixels of shape \(24, 24, 3\)"):
        normalise_pixels([np.zeros((24, 24, 4), np.uint8)], spec)


def test_pad_policy_keeps_aspect_ratio_on_white():
    spec = PreprocessSpec(size_px=20, mean=(0.0,) * 3, std=(1.0,) * 3, resize="pad")
    tensor = to_model_input(Image.new("RGB", (40, 20), (0, 0, 0)), spec)
    assert tensor[:, 0, 10].tolist() == [255.0, 255.0, 255.0]  # padding band above
    assert tensor[:, 10, 10].tolist() == [0.0, 0.0, 0.0]


def test_crop_selects_the_region_and_rejects_outside_boxes():
    image = Image.new("RGB", (100, 50), (0, 0, 0))
    image.paste((255, 255, 255), (50, 0, 100, 50))
    decoded = decode_image(encode(image, "PNG"))
    region = crop_image(decoded, CropBox(0.5, 0.0, 0.5, 1.0))
    assert region.size == (50, 50) and region.getpixel((25, 25)) == (255, 255, 255)
    for bad in (CropBox(0.8, 0, 0.5, 1), CropBox(-0.1, 0, 0.5, 0.5), CropBox(0, 0, 0, 1)):
        with pytest.raises(InvalidRequestError):
            crop_image(decoded, bad)


def test_same_bytes_same_pixels_and_hash():
    data = encode(Image.effect_noise((64, 64), 30).convert("RGB"), "JPEG")
    first, second = decode_image(data), decode_image(data)
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))
    assert sha256_hex(data) == sha256_hex(bytes(data)) and len(sha256_hex(data)) == 64
