"""Reads a custom-model JSON config, so a user's own exported ONNX model (e.g. a ResNet50) can embed images.

Example config (paths relative to the config file's folder)::

    {
      "onnx_path": "resnet50.onnx",
      "model_name": "resnet50-imagenet",
      "input_size_px": 224,
      "mean": [123.675, 116.28, 103.53],
      "std": [58.395, 57.12, 57.375],
      "resize": "center_crop",
      "input_name": "input",
      "output_name": "pooled",
      "logits_output_name": null
    }

`mean`/`std` are in 0-255 pixel units; `resize` is squash, center_crop or pad (see images.PreprocessSpec).
The input must be float32 (batch, 3, size, size) RGB; the output (batch, D) or (batch, D, 1, 1).
The model_id is ``<model_name>:<12 hex of the .onnx SHA-256>-p<6 hex of the preprocessing>``, so changing
either the weights or the preprocessing gives an index-incompatible id.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from visual_search.core.errors import ModelFileError
from visual_search.core.hashing import file_sha256
from visual_search.core.images import PreprocessSpec
from visual_search.embedders.onnx.resolved_model import ResolvedModel

_REQUIRED_KEYS = ("onnx_path", "input_size_px", "mean", "std", "input_name", "output_name")
_OPTIONAL_KEYS = ("resize", "model_name", "logits_output_name", "dimension")


def load_custom_model(config_path: Path) -> ResolvedModel:
    """Validates the config against the ONNX file's declared inputs and outputs. Raises ModelFileError."""
    config = _read_config(config_path)
    onnx_path = Path(config["onnx_path"]).expanduser()
    if not onnx_path.is_absolute():
        onnx_path = config_path.parent / onnx_path
    if not onnx_path.is_file():
        raise ModelFileError(f"{config_path}: the model file {onnx_path} does not exist")
    try:
        spec = PreprocessSpec(
            size_px=int(config["input_size_px"]),
            mean=_triple(config, "mean"),
            std=_triple(config, "std"),
            resize=str(config.get("resize", "center_crop")),
        )
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{config_path}: {exc}") from None
    if spec.size_px <= 0 or any(s <= 0 for s in spec.std):
        raise ModelFileError(f"{config_path}: input_size_px and std must be positive")

    dimension = _check_graph(config_path, onnx_path, config)
    preprocessing = json.dumps([spec.size_px, spec.mean, spec.std, spec.resize], sort_keys=True).encode()
    name = str(config.get("model_name") or onnx_path.stem)
    model_id = f"{name}:{file_sha256(onnx_path)[:12]}-p{hashlib.sha256(preprocessing).hexdigest()[:6]}"
    return ResolvedModel(
        model_id=model_id,
        onnx_path=onnx_path,
        spec=spec,
        input_name=str(config["input_name"]),
        embedding_output=str(config["output_name"]),
        dimension=dimension,
        logits_output=config.get("logits_output_name") or None,
    )


def _read_config(config_path: Path) -> dict:
    try:
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFileError(f"cannot read the model config {config_path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"the model config {config_path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"the model config {config_path} must be a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in config]
    unknown = sorted(set(config) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if missing or unknown:
        raise ModelFileError(f"the model config {config_path}: missing keys {missing}, unknown keys {unknown}")
    return config


def _triple(config: dict, key: str) -> tuple[float, float, float]:
    values = config[key]
    if isinstance(values, (int, float)):
        values = [values] * 3
    if not isinstance(values, list) or len(values) != 3 or not all(isinstance(v, (int, float)) for v in values):
        raise ValueError(f"{key} must be a number or a list of 3 numbers (0-255 pixel units)")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{key} must be finite")
    return (float(values[0]), float(values[1]), float(values[2]))


def _check_graph(config_path: Path, onnx_path: Path, config: dict) -> int:
    """The embedding dimension, from the declared output shape or the config's `dimension`."""
    import onnx

    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception:
        raise ModelFileError(
            f"{onnx_path} is not a readable ONNX model: it is damaged, cut short or not an ONNX file; export it again"
        ) from None
    inputs = {i.name: i for i in graph.input}
    outputs = {o.name: o for o in graph.output}
    if config["input_name"] not in inputs:
        raise ModelFileError(f"{config_path}: the model has no input {config['input_name']!r}; it has {sorted(inputs)}")
    for key in ("output_name", "logits_output_name"):
        if config.get(key) and config[key] not in outputs:
            raise ModelFileError(f"{config_path}: the model has no output {config[key]!r}; it has {sorted(outputs)}")
    dims = outputs[config["output_name"]].type.tensor_type.shape.dim
    known = [int(d.dim_value) for d in list(dims)[1:] if d.HasField("dim_value")]
    declared = math.prod(known) if known and len(known) == len(dims) - 1 else None
    dimension = config.get("dimension", declared)
    if not isinstance(dimension, int) or dimension <= 0:
        raise ModelFileError(
            f'{config_path}: the output\'s size is not fixed in the model; add "dimension" to the config'
        )
    if declared is not None and dimension != declared:
        raise ModelFileError(f"{config_path}: dimension {dimension} disagrees with the model's output size {declared}")
    return dimension
