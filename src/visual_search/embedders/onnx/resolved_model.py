"""What a model resolves to: an ONNX file on disk and how to feed and read it.

Its own module so that the registry (built-in models) and the custom-model loader both import it, and neither
imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from visual_search.core.images import PreprocessSpec


@dataclass(frozen=True)
class ResolvedModel:
    """An ONNX file ready to load, and how to feed it and read it.

    `embedding_output` names a float (batch, dimension) output (or (batch, dimension, 1, 1)); it is
    L2-normalised after inference whether or not the graph already does. `logits_output` may be None.
    """

    model_id: str
    onnx_path: Path
    spec: PreprocessSpec
    input_name: str
    embedding_output: str
    dimension: int
    logits_output: str | None = None
