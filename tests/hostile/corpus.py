"""A generated corpus of hostile inputs, each with the outcome the product documents for it.

Nothing is downloaded: every case is made here from a committed demo photo (demo/catalogue/images) or from
scratch. Two kinds of case:

- FileCase: bytes a shopper might upload or a catalogue folder might contain. Each goes through the HTTP API
  (multipart, base64 JSON, raw body), the Lambda search handler and the CLI (`search FILE`, `index DIR`).
- RequestCase: a malformed or inconsistent HTTP request body (content type + bytes). HTTP API and Lambda only.

`Expected.status` is the HTTP status; `code` the `error.code` of the JSON error body (None on success). The
CLI exits non-zero exactly when `status != 200`. The statuses and codes are those of errors.py and
request_bodies.py / search_api.py / api_models.py (400 invalid_image / invalid_request / invalid_json /
invalid_base64 / invalid_multipart / ambiguous_query; 413 payload_too_large; 415 unsupported_media_type;
422 validation_error; 404 not_found).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_IMAGES = REPO_ROOT / "demo" / "catalogue" / "images"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # the documented default (Settings.max_upload_bytes)


@dataclass(frozen=True)
class Expected:
    status: int
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


OK = Expected(200)
INVALID_IMAGE = Expected(400, "invalid_image")
UNSUPPORTED = Expected(415, "unsupported_media_type")
TOO_LARGE = Expected(413, "payload_too_large")
VALIDATION = Expected(422, "validation_error")


@dataclass(frozen=True)
class FileCase:
    name: str
    filename: str
    make: Callable[[], bytes]
    expected: Expected

    @property
    def data(self) -> bytes:
        return _cached(self.make)


@dataclass(frozen=True)
class RequestCase:
    name: str
    content_type: str | None
    make_body: Callable[[], bytes]
    expected: Expected

    @property
    def body(self) -> bytes:
        return _cached(self.make_body)


@functools.cache
def _cached(make: Callable[[], bytes]) -> bytes:
    return make()


# -- real photos --------------------------------------------------------------------------------------------


def demo_photo_paths() -> list[Path]:
    return sorted(DEMO_IMAGES.glob("*.jpg"))


@functools.cache
def real_jpeg() -> bytes:
    return demo_photo_paths()[0].read_bytes()


def known_key() -> str:
    """The index key of the photo `real_jpeg()` when demo/catalogue/images is indexed by folder (its file name)."""
    return demo_photo_paths()[0].name


@functools.cache
def real_image() -> Image.Image:
    return Image.open(io.BytesIO(real_jpeg())).convert("RGB")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# -- generators ---------------------------------------------------------------------------------------------


def bilevel_png(width: int, height: int) -> bytes:
    """A single-colour 1-bit PNG written chunk by chunk, so a 30000x30000 "bomb" never exists in memory (~110 KB)."""

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0, then all-black pixels
    compressor = zlib.compressobj(9)
    rows_per_step = 1000
    parts = []
    for start in range(0, height, rows_per_step):
        parts.append(compressor.compress(row * min(rows_per_step, height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def _truncated_jpeg() -> bytes:
    data = real_jpeg()
    return data[: len(data) // 2]


def _jpeg_header_only() -> bytes:
    return real_jpeg()[:600]


def _random_bytes() -> bytes:
    return random.Random(6).randbytes(8192)


def _svg() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" '
        b'height="100"><rect width="100" height="100" fill="red"/></svg>'
    )


def _svg_without_declaration() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle r="4"/></svg>'


def _html() -> bytes:
    return b"<!DOCTYPE html><html><head><title>x</title></head><body><img src=x onerror=alert(1)></body></html>"


def _pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _png_bad_crc() -> bytes:
    data = bytearray(encode(real_image(), "PNG"))
    data[29] ^= 0xFF  # inside the IHDR chunk's CRC (bytes 29-32)
    return bytes(data)


def _truncated_png() -> bytes:
    data = encode(real_image(), "PNG")
    return data[: len(data) * 2 // 3]


def _one_pixel() -> bytes:
    return encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG")


def _wide_strip() -> bytes:
    return encode(real_image().resize((10000, 10)), "PNG")


def _tall_strip() -> bytes:
    return encode(real_image().resize((10, 10000)), "PNG")


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)


def _png_16bit() -> bytes:
    ramp = np.tile(np.linspace(0, 65535, 128, dtype=np.uint16), (96, 1))
    return encode(Image.fromarray(ramp), "PNG")  # uint16 -> mode I;16


def _cmyk_jpeg() -> bytes:
    return encode(real_image().convert("CMYK"), "JPEG", quality=90)


def _rgba_png() -> bytes:
    image = real_image().convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    return encode(image, "PNG")


def _la_png() -> bytes:
    return encode(real_image().convert("LA"), "PNG")


def _palette_png() -> bytes:
    return encode(real_image().convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "PNG")


def _palette_png_transparent() -> bytes:
    image = real_image().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encode(image, "PNG", transparency=0)


def _webp() -> bytes:
    return encode(real_image(), "WEBP", quality=80)


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    return encode(real_image(), "JPEG", exif=exif, quality=90)


def _tiff() -> bytes:
    return encode(real_image(), "TIFF", compression="tiff_deflate")


def _bmp() -> bytes:
    return encode(real_image(), "BMP")


def _grayscale_jpeg() -> bytes:
    return encode(real_image().convert("L"), "JPEG")


def _progressive_jpeg() -> bytes:
    return encode(real_image(), "JPEG", progressive=True, quality=85)


def _gif_named_jpg() -> bytes:
    return encode(real_image().convert("P"), "GIF")


def _ico() -> bytes:
    return encode(real_image().resize((32, 32)), "ICO")


def _pcx() -> bytes:
    return encode(real_image(), "PCX")


def _text() -> bytes:
    return b"this is not an image, just some text\n" * 10


def _jpeg_soi_only() -> bytes:
    return b"\xff\xd8"


FILE_CASES: list[FileCase] = [
    FileCase("empty_file", "empty.jpg", lambda: b"", INVALID_IMAGE),
    FileCase("truncated_jpeg", "truncated.jpg", _truncated_jpeg, INVALID_IMAGE),
    FileCase("jpeg_header_only", "header-only.jpg", _jpeg_header_only, INVALID_IMAGE),
    FileCase("jpeg_soi_marker_only", "soi.jpg", _jpeg_soi_only, INVALID_IMAGE),
    FileCase("random_bytes_named_jpg", "random.jpg", _random_bytes, INVALID_IMAGE),
    FileCase("text_named_png", "notes.png", _text, INVALID_IMAGE),
    FileCase("svg_disguised_as_png", "vector.png", _svg, UNSUPPORTED),
    FileCase("svg_without_xml_declaration", "vector2.jpg", _svg_without_declaration, UNSUPPORTED),
    FileCase("html_disguised_as_jpg", "page.jpg", _html, INVALID_IMAGE),
    FileCase("pdf_named_jpg", "document.jpg", _pdf, INVALID_IMAGE),
    FileCase("png_with_bad_crc", "bad-crc.png", _png_bad_crc, INVALID_IMAGE),
    FileCase("truncated_png", "truncated.png", _truncated_png, INVALID_IMAGE),
    FileCase("decompression_bomb_30000x30000", "bomb.png", lambda: bilevel_png(30000, 30000), TOO_LARGE),
    FileCase("over_pixel_limit_9000x9000", "huge.png", lambda: bilevel_png(9000, 9000), TOO_LARGE),
    FileCase("ico_unsupported", "favicon.ico", _ico, UNSUPPORTED),
    FileCase("pcx_named_tif", "scan.tif", _pcx, UNSUPPORTED),
    FileCase("one_pixel", "pixel.png", _one_pixel, OK),
    FileCase("wide_strip_10000x10", "wide.png", _wide_strip, OK),
    FileCase("tall_strip_10x10000", "tall.png", _tall_strip, OK),
    FileCase("animated_gif", "animated.gif", _animated_gif, OK),
    FileCase("png_16bit", "sixteen.png", _png_16bit, OK),
    FileCase("cmyk_jpeg", "cmyk.jpg", _cmyk_jpeg, OK),
    FileCase("png_with_alpha", "alpha.png", _rgba_png, OK),
    FileCase("grey_alpha_png", "grey-alpha.png", _la_png, OK),
    FileCase("palette_png", "palette.png", _palette_png, OK),
    FileCase("palette_png_with_transparency", "palette-transparent.png", _palette_png_transparent, OK),
    FileCase("webp", "photo.webp", _webp, OK),
    FileCase("exif_rotated_jpeg", "rotated.jpg", _exif_rotated_jpeg, OK),
    FileCase("tiff", "photo.tiff", _tiff, OK),
    FileCase("bmp", "photo.bmp", _bmp, OK),
    FileCase("grayscale_jpeg", "grey.jpg", _grayscale_jpeg, OK),
    FileCase("progressive_jpeg", "progressive.jpg", _progressive_jpeg, OK),
    FileCase("gif_named_jpg", "mislabelled.jpg", _gif_named_jpg, OK),
]

FILE_CASES_BY_NAME = {case.name: case for case in FILE_CASES}


# -- request cases ------------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def json_body(**fields) -> Callable[[], bytes]:
    """A JSON body maker; "<photo>" stands for the real photo, base64-encoded, "<known_key>" for its index key."""

    def make() -> bytes:
        placeholders = {"<photo>": lambda: b64(real_jpeg()), "<known_key>": known_key}
        resolved = {
            name: (placeholders[value]() if isinstance(value, str) and value in placeholders else value)
            for name, value in fields.items()
        }
        return json.dumps(resolved).encode()

    return make


MULTIPART_BOUNDARY = "hostileBoundary7MA4YWxk"
MULTIPART = f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"


def multipart_body(fields: dict[str, bytes | str], files: dict[str, tuple[str, bytes, str]] | None = None) -> bytes:
    """A multipart/form-data body: plain `fields`, and `files` as name -> (filename, bytes, content type)."""
    parts: list[bytes] = []
    for name, value in fields.items():
        value = value.encode() if isinstance(value, str) else value
        parts.append(
            f'--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    for name, (filename, data, content_type) in (files or {}).items():
        parts.append(
            f'--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{MULTIPART_BOUNDARY}--\r\n".encode()


def _oversized_base64() -> bytes:
    # 11 MB of image once decoded: over the 10 MB limit (and the body is over the server's body cap too).
    payload = "A" * ((MAX_UPLOAD_BYTES + 1024 * 1024) * 4 // 3)
    return json.dumps({"image": payload}).encode()


def _oversized_raw() -> bytes:
    return real_jpeg() + b"\x00" * (MAX_UPLOAD_BYTES + 1)


def _oversized_multipart() -> bytes:
    return multipart_body({}, {"file": ("big.jpg", real_jpeg() + b"\x00" * (MAX_UPLOAD_BYTES + 1), "image/jpeg")})


def _crop_json(x, y, w, h) -> Callable[[], bytes]:
    return json_body(image="<photo>", crop={"x": x, "y": y, "w": w, "h": h})


def _nan_crop() -> bytes:
    # Python's json writes NaN, and a lenient JSON reader accepts it: the API must still refuse it.
    return json.dumps({"image": b64(real_jpeg()), "crop": {"x": float("nan"), "y": 0, "w": 0.5, "h": 0.5}}).encode()


REQUEST_CASES: list[RequestCase] = [
    RequestCase("wrong_content_type_text_plain", "text/plain", real_jpeg, UNSUPPORTED),
    RequestCase("no_content_type", None, real_jpeg, UNSUPPORTED),
    RequestCase("form_urlencoded", "application/x-www-form-urlencoded", lambda: b"image=abc&k=3", UNSUPPORTED),
    RequestCase("svg_raw_body_as_image_svg", "image/svg+xml", _svg, UNSUPPORTED),
    RequestCase(
        "invalid_base64", "application/json", json_body(image="!!!not*base64$$$"), Expected(400, "invalid_base64")
    ),
    RequestCase(
        "base64_with_bad_padding", "application/json", json_body(image="QUJD=A=="), Expected(400, "invalid_base64")
    ),
    RequestCase("oversized_base64", "application/json", _oversized_base64, TOO_LARGE),
    RequestCase("oversized_raw_body", "image/jpeg", _oversized_raw, TOO_LARGE),
    RequestCase("oversized_multipart_file", MULTIPART, _oversized_multipart, TOO_LARGE),
    RequestCase(
        "data_url_of_text",
        "application/json",
        json_body(image="data:text/plain;base64," + b64(b"hello, not an image")),
        INVALID_IMAGE,
    ),
    RequestCase(
        "data_url_of_svg", "application/json", json_body(image="data:image/svg+xml;base64," + b64(_svg())), UNSUPPORTED
    ),
    RequestCase(
        "data_url_of_photo",
        "application/json",
        lambda: json.dumps({"image": "data:image/jpeg;base64," + b64(real_jpeg())}).encode(),
        OK,
    ),
    RequestCase("extra_field", "application/json", json_body(image="<photo>", colour="red"), VALIDATION),
    RequestCase(
        "misspelt_filter_field", "application/json", json_body(image="<photo>", filter={"label": ["x"]}), VALIDATION
    ),
    RequestCase("missing_query_source", "application/json", json_body(k=5), Expected(400, "ambiguous_query")),
    RequestCase("empty_json_object", "application/json", lambda: b"{}", Expected(400, "ambiguous_query")),
    RequestCase(
        "image_and_key_together",
        "application/json",
        json_body(image="<photo>", key="anything.jpg"),
        Expected(400, "ambiguous_query"),
    ),
    RequestCase(
        "image_and_url_together",
        "application/json",
        json_body(image="<photo>", url="http://127.0.0.1:9/x.jpg"),
        Expected(400, "ambiguous_query"),
    ),
    RequestCase("k_zero", "application/json", json_body(image="<photo>", k=0), VALIDATION),
    RequestCase("k_101", "application/json", json_body(image="<photo>", k=101), VALIDATION),
    RequestCase("k_string", "application/json", json_body(image="<photo>", k="a"), VALIDATION),
    RequestCase("k_true", "application/json", json_body(image="<photo>", k=True), VALIDATION),
    RequestCase("k_fraction", "application/json", json_body(image="<photo>", k=2.5), VALIDATION),
    RequestCase("k_negative", "application/json", json_body(image="<photo>", k=-3), VALIDATION),
    RequestCase("k_100_is_allowed", "application/json", json_body(image="<photo>", k=100), OK),
    RequestCase(
        "crop_outside_image", "application/json", _crop_json(0.6, 0.6, 0.6, 0.6), Expected(400, "invalid_request")
    ),
    RequestCase("crop_negative", "application/json", _crop_json(-0.1, 0.0, 0.5, 0.5), Expected(400, "invalid_request")),
    RequestCase("crop_zero_size", "application/json", _crop_json(0.2, 0.2, 0.0, 0.3), Expected(400, "invalid_request")),
    RequestCase("crop_nan", "application/json", _nan_crop, VALIDATION),
    RequestCase(
        "crop_missing_field", "application/json", json_body(image="<photo>", crop={"x": 0, "y": 0, "w": 1}), VALIDATION
    ),
    RequestCase("crop_inside_is_allowed", "application/json", _crop_json(0.25, 0.25, 0.5, 0.5), OK),
    RequestCase(
        "crop_with_key",
        "application/json",
        json_body(key="<known_key>", crop={"x": 0, "y": 0, "w": 0.5, "h": 0.5}),
        Expected(400, "invalid_request"),
    ),
    RequestCase("more_like_this_by_key", "application/json", json_body(key="<known_key>", k=3), OK),
    RequestCase(
        "filters_label_not_a_list",
        "application/json",
        json_body(image="<photo>", filters={"label": "Blazer"}),
        VALIDATION,
    ),
    RequestCase("unknown_key", "application/json", json_body(key="no/such/key.jpg"), Expected(404, "not_found")),
    RequestCase(
        "malformed_json", "application/json", lambda: b'{"image": "abc", "k": 3', Expected(400, "invalid_json")
    ),
    RequestCase("json_array_body", "application/json", lambda: b"[1, 2, 3]", Expected(400, "invalid_json")),
    RequestCase("deeply_nested_json_body", "application/json", lambda: b"[" * 100_000, Expected(400, "invalid_json")),
    RequestCase(
        "deeply_nested_json_field",
        "application/json",
        lambda: b'{"key": "x", "filters": {"label": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
        Expected(400, "invalid_json"),
    ),
    RequestCase(
        "multipart_deeply_nested_crop",
        MULTIPART,
        lambda: multipart_body({"crop": "[" * 100_000}, {"file": ("a.jpg", real_jpeg(), "image/jpeg")}),
        Expected(400, "invalid_multipart"),
    ),
    RequestCase("json_not_utf8", "application/json", lambda: b'{"image": "\xff\xfe"}', Expected(400, "invalid_json")),
    RequestCase("empty_json_body", "application/json", lambda: b"", Expected(400, "invalid_json")),
    RequestCase(
        "multipart_without_file_field",
        MULTIPART,
        lambda: multipart_body({"k": "5"}),
        Expected(400, "invalid_multipart"),
    ),
    RequestCase(
        "multipart_without_boundary",
        "multipart/form-data",
        lambda: multipart_body({"k": "5"}),
        Expected(400, "invalid_multipart"),
    ),
    RequestCase(
        "multipart_k_zero",
        MULTIPART,
        lambda: multipart_body({"k": "0"}, {"file": ("a.jpg", real_jpeg(), "image/jpeg")}),
        VALIDATION,
    ),
    RequestCase(
        "multipart_crop_not_json",
        MULTIPART,
        lambda: multipart_body({"crop": "{x:1"}, {"file": ("a.jpg", real_jpeg(), "image/jpeg")}),
        Expected(400, "invalid_multipart"),
    ),
    RequestCase(
        "multipart_filters_not_an_object",
        MULTIPART,
        lambda: multipart_body({"filters": "null"}, {"file": ("a.jpg", real_jpeg(), "image/jpeg")}),
        Expected(400, "invalid_multipart"),
    ),
    RequestCase(
        "multipart_field_given_twice",
        MULTIPART,
        lambda: multipart_body({"k": "5"}, {"file": ("a.jpg", real_jpeg(), "image/jpeg")}).replace(
            b'name="k"', b'name="file"'
        ),
        Expected(400, "invalid_multipart"),
    ),
    RequestCase(
        "multipart_file_random_bytes",
        MULTIPART,
        lambda: multipart_body({}, {"file": ("a.jpg", _random_bytes(), "image/jpeg")}),
        INVALID_IMAGE,
    ),
]


def request_params(pytest_module) -> list:
    """REQUEST_CASES as pytest params, named after the case."""
    return [pytest_module.param(case, id=case.name) for case in REQUEST_CASES]


REQUEST_CASE_NAMES = [case.name for case in REQUEST_CASES]
assert len(FILE_CASES) + len(REQUEST_CASES) >= 30
assert len(set(REQUEST_CASE_NAMES)) == len(REQUEST_CASES) and len(FILE_CASES_BY_NAME) == len(FILE_CASES)
