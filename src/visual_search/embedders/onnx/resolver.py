"""Resolves a model name ("lite2-fp32", "lite2-int8", optionally "@<input px>") or a custom-model JSON config to an
ONNX file on disk.

The built-in models are built from the installed weights once and cached under
`$VISUAL_SEARCH_CACHE_DIR` (else the platform user cache dir, ``.../visual-search/models``), keyed by the
weights' SHA-256, the graph builder version and, for int8, the calibration photos. A file appears in the cache
only by an atomic rename, so another process never opens a half-written model.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visual_search.core.colour import COLOUR_DIMENSION, colour_model_id
from visual_search.core.errors import ModelFileError
from visual_search.core.hashing import file_sha256
from visual_search.core.images import DEFAULT_INPUT_SIZE_PX, PreprocessSpec
from visual_search.embedders.lite2_builder.weights import default_weights_path
from visual_search.embedders.onnx.resolved_model import ResolvedModel

BUILTIN_MODELS = ("lite2-fp32", "lite2-int8")
# "lite2-fp32@368-avg": the same network at another input size (it is fully convolutional) and pooling.
_BUILTIN_NAME = re.compile(r"^(?P<base>lite2-fp32|lite2-int8)(?:@(?P<size>\d{2,4}))?(?:-(?P<pooling>avg|rmac))?$")
# Chosen with bench/bench_quality.py (docs/BENCHMARKS.md): it beat 260 px average pooling on both benchmarks
# within the cost bounds. "lite2-fp32@260-avg" is the model of before.
DEFAULT_SIZE_PX = DEFAULT_INPUT_SIZE_PX
DEFAULT_POOLING = "rmac"
_build_lock = threading.Lock()  # one build at a time within a process; other processes rely on the rename


def model_cache_dir(configured: str | Path | None = None) -> Path:
    """`configured` (Settings.cache_dir, from VISUAL_SEARCH_CACHE_DIR) or the platform's per-user cache dir."""
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("visual-search")) / "models"


def resolve_model(
    name: str | Path,
    *,
    calibration_dir: Path | None = None,
    cache_dir: Path | None = None,
    weights_path: Path | None = None,
) -> ResolvedModel:
    """ "lite2-fp32", "lite2-int8" (needs `calibration_dir`, a folder of real photos), either with "@<px>" for
    another input size and "-avg"/"-rmac" for the pooling (default 300 px, R-MAC; "lite2-fp32@260-avg" is the
    model of before), or a path to a JSON config.

    The built-in models' vectors are signatures of appearance and colour (core/colour.py).
    The first call for a built-in model builds it (about 2 s for fp32; int8 calibration takes a minute or two);
    later calls only hash the weights and return. Raises ModelFileError.
    """
    builtin = _BUILTIN_NAME.match(str(name))
    if builtin:
        size_px = int(builtin["size"] or DEFAULT_SIZE_PX)
        cache = Path(cache_dir) if cache_dir else model_cache_dir()
        return _resolve_lite2(
            builtin["base"], size_px, builtin["pooling"] or DEFAULT_POOLING, calibration_dir, cache, weights_path
        )
    if str(name).lower().endswith(".json") or Path(name).is_file():
        from visual_search.embedders.onnx.custom_model import load_custom_model

        return load_custom_model(Path(name))
    raise ModelFileError(f"unknown model {name!r}: use one of {', '.join(BUILTIN_MODELS)} or a model config .json")


def builtin_spec(name: str | Path) -> PreprocessSpec | None:
    """The input a built-in model name ("lite2-fp32@300") wants, without building anything; None for other names.
    A SageMaker client uses it to decode photos as the endpoint serving that model will preprocess them."""
    from visual_search.embedders.lite2_builder.graph import lite2_preprocess

    builtin = _BUILTIN_NAME.match(str(name))
    return lite2_preprocess(int(builtin["size"] or DEFAULT_SIZE_PX)) if builtin else None


def _resolve_lite2(
    name: str, size_px: int, pooling: str, calibration_dir: Path | None, cache_dir: Path, weights_path: Path | None
) -> ResolvedModel:
    from visual_search.embedders.lite2_builder import graph as lite2_graph

    if not 64 <= size_px <= 1024:
        raise ModelFileError(f"the input size of {name}@{size_px} must be 64-1024 px")
    weights_path = Path(weights_path) if weights_path else default_weights_path()
    if not weights_path.is_file():
        raise ModelFileError(f"the weights file {weights_path} does not exist")
    weights_hash = _remembered_sha256(weights_path, cache_dir)
    version = f"{weights_hash[:8]}-b{lite2_graph.BUILDER_VERSION}-{size_px}px-{pooling}"
    build = f"{weights_hash[:16]}-b{lite2_graph.BUILDER_VERSION}-{size_px}px"
    fp32_path = cache_dir / f"efficientnet-lite2-fp32-{build}.onnx"
    _ensure_cached(fp32_path, lambda tmp: _build_fp32(weights_path, tmp, size_px))
    spec = lite2_graph.lite2_preprocess(size_px)
    common: dict[str, Any] = dict(
        spec=spec,
        input_name=lite2_graph.INPUT_NAME,
        embedding_output=lite2_graph.EMBEDDING_OUTPUT,
        dimension=lite2_graph.EMBEDDING_DIMENSION + COLOUR_DIMENSION,
        logits_output=lite2_graph.LOGITS_OUTPUT,
        feature_map_output=lite2_graph.FEATURE_MAP_OUTPUT,
        colour_descriptor=True,
        pooling=pooling,
    )
    if name == "lite2-fp32":
        return ResolvedModel(
            model_id=colour_model_id(f"efficientnet-lite2-fp32:{version}"), onnx_path=fp32_path, **common
        )

    from visual_search.embedders.onnx import int8 as int8_quantize

    if calibration_dir is None:
        raise ModelFileError(
            "lite2-int8 needs a folder of real photos to calibrate on: set VISUAL_SEARCH_CALIBRATION_DIR "
            "(or --calibration-dir), or use lite2-fp32"
        )
    photos = int8_quantize.calibration_images(Path(calibration_dir))
    calibration_hash = _remembered(
        cache_dir, _stat_fingerprint(photos), lambda: int8_quantize.calibration_fingerprint(photos)
    )[:8]
    int8_version = f"{version}-q{int8_quantize.QUANTIZER_VERSION}-{calibration_hash}"
    int8_path = (
        cache_dir / f"efficientnet-lite2-int8-{build}-q{int8_quantize.QUANTIZER_VERSION}-{calibration_hash}.onnx"
    )
    _ensure_cached(
        int8_path,
        lambda tmp: int8_quantize.quantize_static_int8(fp32_path, tmp, photos, spec, lite2_graph.INPUT_NAME),
    )
    return ResolvedModel(
        model_id=colour_model_id(f"efficientnet-lite2-int8:{int8_version}"), onnx_path=int8_path, **common
    )


def _remembered_sha256(path: Path, cache_dir: Path) -> str:
    """The file's SHA-256, recomputed only when its path, size or mtime changed (hashing 25 MB takes 0.1-0.7 s)."""
    return _remembered(cache_dir, _stat_fingerprint([path]), lambda: file_sha256(path))


def _stat_fingerprint(paths: list[Path]) -> str:
    parts = []
    for path in paths:
        stat = path.stat()
        parts.append(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    return "\n".join(parts)


def _remembered(cache_dir: Path, fingerprint: str, compute: Callable[[], str]) -> str:
    """A content hash memoised in the cache under a hash of the files' paths, sizes and mtimes (like git's index)."""
    memo = cache_dir / f"hash-{hashlib.sha256(fingerprint.encode()).hexdigest()[:24]}.txt"
    try:
        remembered = memo.read_text().strip()
        if len(remembered) == 64:
            return remembered
    except OSError:
        pass
    digest = compute()
    try:
        _ensure_cached(memo, lambda temporary: temporary.write_text(digest))
    except ModelFileError:
        pass  # an unwritable cache only costs the hash next time; building the model will report it
    return digest


def _build_fp32(weights_path: Path, destination: Path, size_px: int) -> None:
    import onnx

    from visual_search.embedders.lite2_builder.graph import build_lite2_model
    from visual_search.embedders.lite2_builder.weights import load_state_dict

    onnx.save(build_lite2_model(load_state_dict(weights_path), size_px), str(destination))


def _ensure_cached(path: Path, build: Callable[[Path], object]) -> None:
    """Builds `path` through a temporary sibling and an atomic rename, unless it already exists."""
    if path.is_file():
        return
    with _build_lock:
        if path.is_file():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelFileError(f"cannot create the model cache folder {path.parent}: {exc.strerror or exc}") from None
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            build(temporary)
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
            os.replace(temporary, path)  # atomic on POSIX and Windows; a racing builder just replaces an equal file
        finally:
            temporary.unlink(missing_ok=True)
