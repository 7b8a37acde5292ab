"""Synthetic shopper photos of catalogue items: the second benchmark (instance retrieval), seeded and deterministic.

Category leave-one-out asks "the same kind of garment"; this asks "this exact product, photographed badly". A
query is made from one catalogue photo with some of: an off-centre crop of 40-90 % of the area, a rotation of
up to ±20°, a perspective warp, blur, a colour-temperature and brightness shift, downscaling to about 200 px,
placement on a cluttered background cut from another photo, and JPEG quality 30-60. The gallery keeps the
untouched originals; the metrics are instance recall@1, recall@10 and mAP (one relevant image per query).
The same seed, photos and backgrounds always give byte-identical queries.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

# Probability of each step; a query gets a random subset, so every benchmark run mixes mild and hard cases.
STEP_PROBABILITY = {
    "crop": 0.7,
    "rotate": 0.5,
    "perspective": 0.4,
    "blur": 0.4,
    "light": 0.6,
    "downscale": 0.5,
    "background": 0.4,
}


@dataclass(frozen=True)
class ShopperQuery:
    """A synthetic query: JPEG bytes of a shopper's photo of the gallery item at `source`, and the steps used."""

    source: int
    jpeg: bytes
    steps: tuple[str, ...]


def shopper_queries(
    count: int,
    gallery_size: int,
    load: Callable[[int], Image.Image],
    *,
    seed: int = 0,
    backgrounds: Sequence[Callable[[], Image.Image]] = (),
) -> list[ShopperQuery]:
    """`count` queries of distinct gallery items chosen with `seed` (at most gallery_size). `load(i)` gives the
    RGB gallery photo i; `backgrounds` give clutter photos (without them, other gallery photos are used)."""
    chooser = np.random.default_rng([seed, 0])
    sources = sorted(chooser.choice(gallery_size, size=min(count, gallery_size), replace=False).tolist())
    queries = []
    for source in sources:
        rng = np.random.default_rng([seed, 1, source])
        if backgrounds:
            background_of = backgrounds[int(rng.integers(len(backgrounds)))]
        else:
            other = int((source + 1 + rng.integers(max(gallery_size - 1, 1))) % gallery_size)
            background_of = functools.partial(load, other)  # deferred: most queries need no background
        image, steps = make_shopper_photo(load(source), background_of, rng)
        queries.append(ShopperQuery(source, image, steps))
    return queries


def make_shopper_photo(
    photo: Image.Image, background_of: Callable[[], Image.Image], rng: np.random.Generator
) -> tuple[bytes, tuple[str, ...]]:
    """JPEG bytes of one shopper photo of `photo`, and the names of the steps applied (in order)."""
    steps = [name for name, probability in STEP_PROBABILITY.items() if rng.random() < probability]
    image = photo.convert("RGB")
    if "crop" in steps:
        image = _crop(image, rng)
    if "perspective" in steps:
        image = _perspective(image, rng)
    if "rotate" in steps:
        fill = tuple(int(v) for v in np.asarray(image).reshape(-1, 3).mean(axis=0))
        image = image.rotate(float(rng.uniform(-20, 20)), Image.Resampling.BICUBIC, fillcolor=fill)
    if "background" in steps:
        image = _on_background(image, background_of().convert("RGB"), rng)
    if "light" in steps:
        image = _light(image, rng)
    if "blur" in steps:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 2.0))))
    if "downscale" in steps:
        scale = float(rng.uniform(180, 220)) / min(image.size)
        if scale < 1:
            image = image.resize(
                (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
            )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(30, 61)))
    return buffer.getvalue(), tuple(steps) + ("jpeg",)


def _crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """40-90 % of the area, aspect 3:4-4:3, anywhere it fits (so usually not centred)."""
    area = rng.uniform(0.4, 0.9) * image.width * image.height
    aspect = float(np.exp(rng.uniform(np.log(0.75), np.log(4 / 3))))
    width = min(image.width, max(1, round(np.sqrt(area * aspect))))
    height = min(image.height, max(1, round(np.sqrt(area / aspect))))
    left = int(rng.integers(0, image.width - width + 1))
    top = int(rng.integers(0, image.height - height + 1))
    return image.crop((left, top, left + width, top + height))


def _perspective(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo seen from a little off-axis: each corner moved by up to 12 % of the size."""
    w, h = image.size
    target = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    source = target + rng.uniform(-0.12, 0.12, size=(4, 2)) * np.array([w, h])
    # Solve for the 8 coefficients that map output (target) corners to input (source) corners.
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        values += [u, v]
    coefficients = np.linalg.solve(np.array(rows), np.array(values))
    fill = tuple(int(v) for v in np.asarray(image).reshape(-1, 3).mean(axis=0))
    return image.transform(
        (w, h), Image.Transform.PERSPECTIVE, tuple(coefficients), Image.Resampling.BICUBIC, fillcolor=fill
    )


def _on_background(item: Image.Image, background: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The item, at 55-85 % of the scene's short side, somewhere on a scene cut (and enlarged) from clutter."""
    side = max(item.size) / rng.uniform(0.55, 0.85)
    scene_w, scene_h = round(side * rng.uniform(1.0, 1.3)), round(side)
    patch = _crop(background, rng).resize((scene_w, scene_h), Image.Resampling.BILINEAR)
    left = int(rng.integers(0, max(1, scene_w - item.width + 1)))
    top = int(rng.integers(0, max(1, scene_h - item.height + 1)))
    patch.paste(item, (left, top))
    return patch


def _light(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Warmer or cooler light (red and blue gains in opposite directions) and a brightness change."""
    warmth = rng.uniform(-0.15, 0.15)
    gains = np.array([1 + warmth, 1.0, 1 - warmth]) * rng.uniform(0.7, 1.3)
    pixels = np.asarray(image, dtype=np.float32) * gains.astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def recolour(image: Image.Image, hue_shift: int, min_saturation: int = 64) -> Image.Image:
    """The photo with the hue of its coloured pixels (HSV saturation above `min_saturation` of 255) rotated by
    `hue_shift`/256 of the circle: the same garment in another colour, for colour-fidelity checks."""
    hue, saturation, value = (np.asarray(band, dtype=np.int32) for band in image.convert("RGB").convert("HSV").split())
    hue = np.where(saturation > min_saturation, (hue + hue_shift) % 256, hue)
    bands = [Image.fromarray(band.astype(np.uint8), "L") for band in (hue, saturation, value)]
    return Image.merge("HSV", bands).convert("RGB")
