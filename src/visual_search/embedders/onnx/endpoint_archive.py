"""The model directory a SageMaker endpoint serves: the ONNX file and a description of how to feed and read it.

`save_endpoint_model` writes what model/build_model_archive.py packs into model.tar.gz; `load_endpoint_embedder`
is what model/code/inference.py's model_fn calls. The model_id is carried over unchanged, so the endpoint and the
in-process embedder of the same model name the same model, and an index accepts vectors from either.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from visual_search.core.images import PreprocessSpec

ONNX_FILE = "model.onnx"
DESCRIPTION_FILE = "endpoint_model.json"


def save_endpoint_model(model, directory: Path) -> None:
    """Copy a ResolvedModel's ONNX file and write its description into `directory` (created if missing)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model.onnx_path, directory / ONNX_FILE)
    description = {
        "model_id": model.model_id,
        "spec": asdict(model.spec),
        "input_name": model.input_name,
        "embedding_output": model.embedding_output,
        "dimension": model.dimension,
        "logits_output": model.logits_output,
        # The colour part of the vectors is computed beside the network from its feature map; the endpoint must
        # do the same to give the same vectors.
        "feature_map_output": model.feature_map_output,
        "colour_descriptor": model.colour_descriptor,
        "pooling": model.pooling,
    }
    (directory / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")


def load_endpoint_embedder(directory: Path, *, intra_op_threads: int | None = None):
    """An OnnxEmbedder over the model saved in `directory`. Raises FileNotFoundError, KeyError on a bad folder."""
    from visual_search.embedders.onnx.embedder import OnnxEmbedder
    from visual_search.embedders.onnx.resolved_model import ResolvedModel

    directory = Path(directory)
    description = json.loads((directory / DESCRIPTION_FILE).read_text())
    spec = description.pop("spec")
    model = ResolvedModel(
        onnx_path=directory / ONNX_FILE,
        spec=PreprocessSpec.from_dict(spec),
        **description,
    )
    return OnnxEmbedder(model, intra_op_threads=intra_op_threads)
