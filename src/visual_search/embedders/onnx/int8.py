"""Static int8 (QDQ) quantisation of an ONNX image model, calibrated on real photos.

Activation ranges come from running the fp32 model over a few hundred photos, decoded and preprocessed exactly
as queries are (images.decode_image + images.to_model_input), so the ranges match what the model sees in use.
Weights are quantised per output channel: depthwise kernels differ by orders of magnitude between channels,
and one scale per tensor would flatten the small ones to zero.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from visual_search.core.errors import ModelFileError, VisualSearchError
from visual_search.core.images import IMAGE_SUFFIXES, PreprocessSpec, decode_image, to_model_input

# Bump when the recipe below changes: the quantised file, and so the vectors, change with it.
QUANTIZER_VERSION = 1
DEFAULT_CALIBRATION_IMAGES = 300
# Kept in float: the L2 normalisation and the classifier are a negligible share of the time, and quantising
# the pooled feature would put a step of one quantum into every embedding dimension.
_FLOAT_OP_TYPES = {"ReduceL2", "Max", "Div", "Gemm", "Flatten", "GlobalAveragePool"}
_RECIPE = {
    "per_channel": True,
    # x86 CPUs without VNNI multiply uint8 x int8 with VPMADDUBSW, whose int16 sums saturate with full 8-bit
    # weights: measured on this model, mean fp32/int8 cosine 0.964 (min 0.81) at 8 bits, 0.980 (min 0.95) at 7.
    # uint8 weights avoid the saturation but ran 10x slower here (no fast u8u8 depthwise kernel).
    "reduce_range": True,
}


def calibration_images(directory: Path, max_images: int = DEFAULT_CALIBRATION_IMAGES) -> list[Path]:
    """Up to `max_images` image files under `directory`, spread evenly over its sorted listing.

    Sorting makes the choice, and so the quantised model, the same on every machine with the same folder.
    Raises ModelFileError when the folder is missing or holds no images.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(f"the calibration folder {directory} does not exist")
    found = sorted(
        (p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(directory).as_posix(),
    )
    if not found:
        raise ModelFileError(f"the calibration folder {directory} holds no images")
    if len(found) <= max_images:
        return found
    picks = np.linspace(0, len(found) - 1, max_images).round().astype(int)
    return [found[i] for i in sorted(set(picks.tolist()))]


def calibration_fingerprint(paths: Sequence[Path]) -> str:
    """Hex SHA-256 of the calibration photos' contents, in order: the same photos give the same int8 model."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


class _PhotoCalibrationReader:
    """Feeds preprocessed photos in batches (min/max ranges do not depend on batching); undecodable files are skipped rather than failing the build."""

    def __init__(self, paths: Sequence[Path], spec: PreprocessSpec, input_name: str, batch_size: int = 16):
        self._batches = self._generate(paths, spec, input_name, batch_size)
        self.used = 0

    def _generate(self, paths, spec, input_name, batch_size) -> Iterator[dict[str, np.ndarray]]:
        pending: list[np.ndarray] = []
        for path in paths:
            try:
                decoded = decode_image(Path(path).read_bytes(), min_size_px=spec.size_px)
            except (VisualSearchError, OSError):
                continue
            self.used += 1
            pending.append(to_model_input(decoded.image, spec))
            if len(pending) == batch_size:
                yield {input_name: np.stack(pending)}
                pending = []
        if pending:
            yield {input_name: np.stack(pending)}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # part of onnxruntime's CalibrationDataReader interface; one pass is enough here
        pass


def quantize_static_int8(
    fp32_path: Path,
    output_path: Path,
    calibration_paths: Sequence[Path],
    spec: PreprocessSpec,
    input_name: str,
) -> int:
    """Writes the QDQ int8 model to `output_path`; returns how many photos calibrated it.

    Activations are uint8 (asymmetric: ReLU6 outputs are never negative), weights int8 symmetric per channel
    in a reduced 7-bit range. Raises ModelFileError when no calibration photo could be decoded.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_PhotoCalibrationReader, CalibrationDataReader):
        pass

    reader = Reader(calibration_paths, spec, input_name)
    with tempfile.TemporaryDirectory(prefix="visual-search-quant-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Shape inference plus constant folding first, as onnxruntime's quantisation guide recommends.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        float_nodes = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in _FLOAT_OP_TYPES]
        quantize_static(
            str(prepared),
            str(output_path),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes,
            **{"calibrate_method": CalibrationMethod.MinMax, **_RECIPE},
        )
    if reader.used == 0:
        raise ModelFileError("none of the calibration photos could be decoded")
    return reader.used
