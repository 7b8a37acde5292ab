"""model/build_model_archive.py and the inference script it packs, run in-process: both content types, and the
endpoint's vector for a photo equals the in-process embedder's (the same pixels reach the same model)."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
from aws_fixtures import REPO_ROOT

from visual_search.core.images import decode_image
from visual_search.embedders.sagemaker import protocol as sagemaker_protocol

pytest.importorskip("onnxruntime")
MODEL = "lite2-fp32"  # int8 needs a calibration run; the archive code path is the same


def _builder():
    spec = importlib.util.spec_from_file_location("build_model_archive", REPO_ROOT / "model" / "build_model_archive.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    return builder


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("archive") / "model.tar.gz"
    _builder().build_archive(MODEL, output)
    extracted = output.parent / "extracted"
    with tarfile.open(output) as archive:
        archive.extractall(extracted, filter="data")
    return extracted


@pytest.fixture(scope="module")
def inference(archive_dir):
    spec = importlib.util.spec_from_file_location("inference", archive_dir / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    search_path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = search_path  # the archive's code/lib must not shadow this test run's packages
    return module


@pytest.fixture(scope="module")
def local_embedder():
    from visual_search.embedders.onnx.embedder import OnnxEmbedder

    return OnnxEmbedder.from_name(MODEL)


def test_archive_holds_the_model_the_script_and_the_library_from_src(archive_dir):
    assert (archive_dir / "model.onnx").stat().st_size > 1_000_000
    assert not (archive_dir / "code" / "requirements.txt").exists(), "the container would pip install it at start"
    assert list((archive_dir / "code" / "lib" / "onnxruntime" / "capi").glob("onnxruntime_pybind11_state*.so"))
    packed = archive_dir / "code" / "visual_search"
    source = REPO_ROOT / "src" / "visual_search"
    for name in ("core/images.py", "embedders/sagemaker/protocol.py", "embedders/onnx/embedder.py"):
        assert (packed / name).read_bytes() == (source / name).read_bytes()
    assert not list(packed.rglob("__pycache__"))
    # The endpoint runs the model, not the product: no server, CLI, AWS handlers or index and store adapters.
    assert sorted(path.name for path in packed.iterdir()) == ["__init__.py", "core", "embedders", "py.typed"]


def test_two_builds_give_the_same_bytes(archive_dir, tmp_path):
    """Sorted entries, no owners, time stamps 0 (the gzip header's too): the digest names the content."""
    first = archive_dir.parent / "model.tar.gz"
    second = tmp_path / "again.tar.gz"
    _builder().build_archive(MODEL, second)
    assert hashlib.sha256(second.read_bytes()).hexdigest() == hashlib.sha256(first.read_bytes()).hexdigest()
    assert first.read_bytes()[4:8] == b"\0\0\0\0", "the gzip header carries a build time"
    with tarfile.open(first) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.mode for m in members} <= {0o644, 0o755}


def _invoke(inference, model, body, content_type):
    return json.loads(
        inference.output_fn(inference.predict_fn(inference.input_fn(body, content_type), model), "application/json")
    )


def test_both_content_types_give_the_local_embedders_vector(inference, archive_dir, local_embedder, demo_photos):
    model = inference.model_fn(str(archive_dir))
    assert model.model_id == local_embedder.model_id
    photo = demo_photos[0].read_bytes()
    expected = local_embedder.embed([decode_image(photo, min_size_px=local_embedder.spec.size_px).image])[0]

    as_image = _invoke(inference, model, photo, "application/x-image")
    as_json = _invoke(inference, model, json.dumps({"image": base64.b64encode(photo).decode()}), "application/json")
    for answer in (as_image, as_json):
        assert answer["model_id"] == local_embedder.model_id
        vector = np.asarray(answer["predictions"][0], dtype=np.float32)
        np.testing.assert_allclose(vector, expected, atol=1e-6)


def test_the_sagemaker_embedders_png_path_gives_the_local_vector(inference, archive_dir, local_embedder, demo_photos):
    """What SageMakerEmbedder sends (the decoded pixels as PNG, in a JSON batch) embeds like the local path."""
    model = inference.model_fn(str(archive_dir))
    images = [decode_image(p.read_bytes(), min_size_px=model.spec.size_px).image for p in demo_photos[:3]]
    body, content_type = sagemaker_protocol.encode_images_request(images)
    vectors, model_id = sagemaker_protocol.decode_response(
        inference.output_fn(inference.predict_fn(inference.input_fn(body, content_type), model), "*/*"), 3
    )
    np.testing.assert_allclose(vectors, local_embedder.embed(images), atol=1e-6)


def test_describe_and_bad_requests(inference, archive_dir):
    model = inference.model_fn(str(archive_dir))
    description = sagemaker_protocol.decode_description(
        inference.output_fn(
            inference.predict_fn(inference.input_fn(b'{"describe": true}', "application/json"), model),
            "application/json",
        )
    )
    assert (description.dimension, description.spec) == (model.dimension, model.spec)
    from visual_search.core.errors import InvalidImageError, UnsupportedImageTypeError

    with pytest.raises(InvalidImageError):
        inference.input_fn(b"not an image", "application/x-image")
    with pytest.raises(UnsupportedImageTypeError):
        inference.input_fn(b"x", "text/csv")


def test_the_packed_code_imports_its_own_library_copy(archive_dir):
    code = archive_dir / "code"
    script = "import sys; sys.path.insert(0, '.'); import inference, visual_search; print(visual_search.__file__)"
    result = subprocess.run([sys.executable, "-c", script], cwd=code, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve().is_relative_to(code.resolve())


class _ToolkitError(Exception):
    """The signature of sagemaker_inference.errors.GenericInferenceToolkitError (status_code, message)."""

    def __init__(self, status_code, message=None, phrase=None):
        super().__init__(status_code, message, phrase)
        self.status_code, self.message = status_code, message


def test_the_endpoint_answers_errors_in_the_api_shape_without_a_traceback(inference, monkeypatch):
    toolkit = types.ModuleType("sagemaker_inference.errors")
    toolkit.GenericInferenceToolkitError = _ToolkitError
    monkeypatch.setitem(sys.modules, "sagemaker_inference", types.ModuleType("sagemaker_inference"))
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", toolkit)

    with pytest.raises(_ToolkitError) as refused:
        inference.input_fn(b"not an image", "application/x-image")
    assert refused.value.status_code == 400
    assert json.loads(refused.value.message)["error"]["code"] == "invalid_image"

    class BrokenModel:
        def embed(self, images):
            raise RuntimeError("CUDA exploded at 0xdeadbeef")

    with pytest.raises(_ToolkitError) as failed:
        inference.predict_fn([object()], BrokenModel())
    assert failed.value.status_code == 500
    body = json.loads(failed.value.message)
    assert body == {"error": {"code": "internal_error", "message": body["error"]["message"]}}
    assert "deadbeef" not in failed.value.message and "Traceback" not in failed.value.message


# Run with -I -S: no site-packages, no user site, no PYTHON* variables. Sockets and pip are blocked before the
# archive's code is imported; numpy and Pillow come from a folder standing in for what the container image has.
_OFFLINE_SCRIPT = """
import builtins, json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
real_import = builtins.__import__
def no_pip(name, *args, **kwargs):
    if name == "pip" or name.startswith("pip.") or name == "ensurepip":
        raise ImportError("pip is not available at start-up")
    return real_import(name, *args, **kwargs)
builtins.__import__ = no_pip
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import inference, onnxruntime
model = inference.model_fn(sys.argv[3])
photo = open(sys.argv[4], "rb").read()
answer = inference.output_fn(inference.predict_fn(inference.input_fn(photo, "application/x-image"), model), "*/*")
print(json.dumps({"onnxruntime": onnxruntime.__file__, "model_id": json.loads(answer)["model_id"],
                  "dimension": len(json.loads(answer)["predictions"][0])}))
"""


def test_the_archives_code_starts_and_embeds_with_no_network_no_pip_and_no_site_packages(
    archive_dir, local_embedder, demo_photos, tmp_path
):
    import numpy
    import PIL

    image_packages = tmp_path / "container-site-packages"
    image_packages.mkdir()
    for package in (numpy, PIL):
        folder = Path(package.__file__).parent
        for name in (folder.name, f"{folder.name.lower()}.libs", f"{package.__name__.lower()}.libs", "pillow.libs"):
            if (folder.parent / name).exists() and not (image_packages / name).exists():
                (image_packages / name).symlink_to(folder.parent / name)
    code = archive_dir / "code"
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _OFFLINE_SCRIPT,
            str(code),
            str(image_packages),
            str(archive_dir),
            str(demo_photos[0]),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    started = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(started["onnxruntime"]).resolve().is_relative_to((code / "lib").resolve())
    assert started["model_id"] == local_embedder.model_id and started["dimension"] == local_embedder.dimension


def test_an_archive_of_other_model_settings_gives_the_local_vectors_colour_part_included(tmp_path, demo_photos):
    """Whatever the settings (here the model of before: 260 px, average pooling; and the colour descriptor every
    built-in model stores), the
    endpoint runs the same preprocessing, model and colour code as the laptop, so the vectors are equal."""
    from visual_search.core.colour import COLOUR_DIMENSION
    from visual_search.embedders.onnx.embedder import OnnxEmbedder

    spec = importlib.util.spec_from_file_location(
        "build_model_archive_other", REPO_ROOT / "model" / "build_model_archive.py"
    )
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    builder.build_archive("lite2-fp32@260-avg", tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as archive:
        archive.extractall(tmp_path / "extracted", filter="data")
    spec = importlib.util.spec_from_file_location("inference_other", tmp_path / "extracted" / "code" / "inference.py")
    inference = importlib.util.module_from_spec(spec)
    search_path = list(sys.path)
    try:
        spec.loader.exec_module(inference)
    finally:
        sys.path[:] = search_path
    local = OnnxEmbedder.from_name("lite2-fp32@260-avg")
    model = inference.model_fn(str(tmp_path / "extracted"))
    assert model.model_id == local.model_id and "-260px-avg" in model.model_id
    assert model.spec.size_px == 260 and model.dimension == 1280 + COLOUR_DIMENSION
    images = [decode_image(p.read_bytes(), min_size_px=260).image for p in demo_photos[:3]]
    body, content_type = sagemaker_protocol.encode_images_request(images)
    vectors, served = sagemaker_protocol.decode_response(
        inference.output_fn(inference.predict_fn(inference.input_fn(body, content_type), model), "*/*"), 3
    )
    assert served == local.model_id
    np.testing.assert_allclose(vectors, local.embed(images), atol=1e-6)
    photo = demo_photos[4].read_bytes()
    as_image = _invoke(inference, model, photo, "application/x-image")
    expected = local.embed([decode_image(photo, min_size_px=260).image])[0]
    np.testing.assert_allclose(np.asarray(as_image["predictions"][0], np.float32), expected, atol=1e-6)
