"""Colour-aware search and object regions with the real Lite2 model on real photos (issue 12).

Colour fidelity: a garment recoloured to other hues (hue rotation of its coloured pixels) looks the same to the
ImageNet features; with the colour option on, a shopper's photo of the original must rank the original above
its recoloured copies, and with it off the ranking must be exactly the appearance ranking.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fakes import ColourGridEmbedder
from PIL import Image

from visual_search.core.colour import COLOUR_DIMENSION, colour_dimension_of
from visual_search.core.errors import InvalidRequestError
from visual_search.core.images import decode_image
from visual_search.core.ports import RegionProposer
from visual_search.embedders.onnx.embedder import OnnxEmbedder
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.services.search import SearchService
from visual_search.services.shopper_sim import recolour

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
HUE_SHIFTS = (85, 170)  # of PIL's 0-255 hue circle: about +120 and +240 degrees


@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> OnnxEmbedder:
    return OnnxEmbedder.from_name("lite2-fp32", cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {path.stem: path.read_bytes() for path in sorted(PHOTOS.glob("*.jpg"))}


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def recoloured(data: bytes, shift: int) -> Image.Image:
    return recolour(decode_image(data).image, shift)


def shopper_photo(data: bytes) -> bytes:
    """A plainer photo of the same item: an off-centre 85 % crop, saved at JPEG quality 50."""
    image = decode_image(data).image
    width, height = image.size
    return jpeg(image.crop((int(width * 0.1), int(height * 0.05), int(width * 0.95), int(height * 0.9))), quality=50)


@pytest.fixture(scope="module")
def recoloured_catalogue(embedder, photos, tmp_path_factory):
    """The originals and two recoloured copies of each, in a real embedded index."""
    index = LocalIndex(
        tmp_path_factory.mktemp("index"), model_id=embedder.model_id, dimension=embedder.dimension, writable=True
    )
    items = [IndexItem(f"{name}/original", name, lambda d=data: d) for name, data in photos.items()]
    for name, data in photos.items():
        for shift in HUE_SHIFTS:
            copy = jpeg(recoloured(data, shift))
            items.append(IndexItem(f"{name}/hue+{shift}", f"{name}-{shift}", lambda d=copy: d))
    report = IndexingService(embedder, index, batch_size=8).index_items(items)
    assert report.indexed == len(items) and not report.failed
    yield SearchService(embedder, index)
    index.close()


def test_the_recolouring_really_changes_the_garments_colour(photos):
    for name, data in photos.items():
        original = np.asarray(decode_image(data).image, dtype=np.int16)
        changed = np.abs(np.asarray(recoloured(data, HUE_SHIFTS[0]), dtype=np.int16) - original).mean()
        assert changed > 3, f"{name}: the recolouring changed almost nothing ({changed:.1f} levels)"


def test_colour_on_ranks_the_same_hue_above_every_recoloured_copy(recoloured_catalogue, photos):
    for name, data in photos.items():
        hits = recoloured_catalogue.search_image(shopper_photo(data), k=30, colour=0.5).hits
        ranks = {hit.record.key: rank for rank, hit in enumerate(hits)}
        copies = [ranks[f"{name}/hue+{shift}"] for shift in HUE_SHIFTS]
        assert ranks[f"{name}/original"] < min(copies), (
            f"{name}: original at {ranks[f'{name}/original']}, copies at {copies}"
        )


def test_the_colour_descriptor_tells_the_original_hue_from_its_copies(recoloured_catalogue, embedder, photos):
    """The colour part of a shopper's photo is closer to the original than to any recoloured copy, for every
    photo, even the dark grey dress (whose hue rotation changes little)."""
    for name, data in photos.items():
        query = embedder.embed([decode_image(shopper_photo(data), min_size_px=embedder.spec.size_px).image])[0]

        def colour_similarity(key: str, query: np.ndarray = query) -> float:
            stored = recoloured_catalogue.index.get_vector(key)
            return float(2.0 * query[-COLOUR_DIMENSION:] @ stored[-COLOUR_DIMENSION:])

        original = colour_similarity(f"{name}/original")
        copies = [colour_similarity(f"{name}/hue+{shift}") for shift in HUE_SHIFTS]
        assert original > max(copies) + 0.02, f"{name}: original {original:.3f}, copies {copies}"


def test_colour_off_is_exactly_the_appearance_ranking(recoloured_catalogue, embedder, photos):
    query = decode_image(shopper_photo(photos["dress"]), min_size_px=embedder.spec.size_px).image
    signature = embedder.embed([query])[0]
    appearance = signature[:-COLOUR_DIMENSION] / np.linalg.norm(signature[:-COLOUR_DIMENSION])
    hits = recoloured_catalogue.search_image(shopper_photo(photos["dress"]), k=18, colour=0.0).hits
    for hit in hits:
        stored = recoloured_catalogue.index.get_vector(hit.record.key)[:-COLOUR_DIMENSION]
        expected = float(appearance @ (stored / np.linalg.norm(stored)))
        assert hit.score == pytest.approx(expected, abs=1e-5)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_more_like_this_takes_the_colour_weight_too(recoloured_catalogue):
    plain = recoloured_catalogue.search_key("t-shirt/original", k=3, colour=0.0).hits
    coloured = recoloured_catalogue.search_key("t-shirt/original", k=3, colour=1.0).hits
    assert all(hit.record.key != "t-shirt/original" for hit in plain + coloured)
    assert [hit.score for hit in coloured] == sorted((hit.score for hit in coloured), reverse=True)


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_a_colour_weight_outside_0_to_1_is_refused(recoloured_catalogue, photos, weight):
    with pytest.raises(InvalidRequestError, match="colour"):
        recoloured_catalogue.search_image(photos["hat"], k=3, colour=weight)


def test_colour_on_an_index_without_colour_descriptors_is_a_clear_error(tmp_path, photos):
    embedder = ColourGridEmbedder()
    assert colour_dimension_of(embedder.model_id) == 0
    index = LocalIndex(tmp_path / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
    try:
        IndexingService(embedder, index).index_items([IndexItem("hat", "hat", lambda: photos["hat"])])
        service = SearchService(embedder, index)
        assert service.search_image(photos["hat"], k=1, colour=0).hits[0].record.key == "hat"
        with pytest.raises(InvalidRequestError, match="colour descriptor"):
            service.search_image(photos["hat"], k=1, colour=0.5)
    finally:
        index.close()


def test_the_api_model_takes_an_optional_colour_in_0_to_1():
    from pydantic import ValidationError

    from visual_search.api.models import SearchRequest

    assert SearchRequest.model_validate({"key": "a"}).colour == 0.0
    assert SearchRequest.model_validate({"key": "a", "colour": 0.5}).colour == 0.5
    for bad in (-0.5, 1.01, True, "red"):
        with pytest.raises(ValidationError):
            SearchRequest.model_validate({"key": "a", "colour": bad})


def test_regions_find_two_garments_pasted_side_by_side(embedder, photos):
    assert isinstance(embedder, RegionProposer)
    canvas = Image.new("RGB", (900, 400), (255, 255, 255))
    for left, name in ((0, "shoes"), (520, "hat")):
        garment = decode_image(photos[name]).image
        garment.thumbnail((380, 380))
        canvas.paste(garment, (left, (400 - garment.height) // 2))
    regions = embedder.propose_regions(canvas, max_regions=4)
    assert 2 <= len(regions) <= 4
    (first, first_score), (second, second_score) = regions[:2]
    centres = sorted(box.x + box.w / 2 for box in (first, second))
    assert centres[0] < 0.45 and centres[1] > 0.55, regions
    assert first_score >= second_score > 0.1 and sum(score for _, score in regions) <= 1.0 + 1e-6
    for box, _ in regions:
        box.validate()


def test_one_garment_gives_one_dominant_region_and_max_regions_is_obeyed(embedder, photos):
    image = decode_image(photos["dress"]).image
    regions = embedder.propose_regions(image, max_regions=4)
    assert regions[0][1] > 0.6
    assert len(embedder.propose_regions(image, max_regions=1)) == 1
    assert embedder.propose_regions(image, max_regions=0) == []
