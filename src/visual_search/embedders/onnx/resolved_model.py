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

    `embedding_output` names a float (batch, D) output (or (batch, D, 1, 1)); it is L2-normalised after
    inference whether or not the graph already does. `logits_output` may be None. `feature_map_output`, when
    given, names the (batch, channels, h, w) activations the embedding pools; they locate the object (regions,
    colour weighting). With `colour_descriptor`, vectors are signatures [appearance | colour] / sqrt(2) (see
    core/colour.py; needs `feature_map_output`), `dimension` is D + COLOUR_DIMENSION and `model_id` says so.
    `pooling` "rmac" makes the appearance vector from the feature map by R-MAC instead of reading
    `embedding_output` (see pooling.py).
    """

    model_id: str
    onnx_path: Path
    spec: PreprocessSpec
    input_name: str
    embedding_output: str
    dimension: int
    logits_output: str | None = None
    feature_map_output: str | None = None
    colour_descriptor: bool = False
    pooling: str = "avg"
