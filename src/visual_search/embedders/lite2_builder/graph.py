"""Builds the EfficientNet-Lite2 inference graph as an ONNX model from the checkpoint's numpy weights.

Input "image": float32 (batch, 3, S, S), RGB normalised as (x - 127) / 128 (see `lite2_preprocess`); S is 260 px
unless the builder is asked for another size (the network is fully convolutional).
Outputs "embedding": float32 (batch, 1280), the global-average-pooled head features divided by their L2 norm
(unit rows); "logits": float32 (batch, 1000), ImageNet-1k class scores before softmax; "feature_map": float32
(batch, 1280, ceil(S/32), ceil(S/32)), the head activations before pooling (for object regions and the colour
descriptor's object weighting; asking for it costs no extra compute).

Every BatchNorm is folded into the convolution before it; ReLU6 is Clip(0, 6). Padding reproduces TensorFlow's
"SAME" rule for the fixed input size, which puts the odd extra pixel of a stride-2 convolution at the
bottom/right: symmetric padding would shift every feature map by half a pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from visual_search.core.errors import ModelFileError
from visual_search.core.images import PreprocessSpec

if TYPE_CHECKING:
    import onnx

# Bump whenever the graph this module builds changes, so cached .onnx files of the old graph are not reused.
BUILDER_VERSION = 2  # 2: the feature_map output; any input size
INPUT_SIZE_PX = 260
INPUT_NAME = "image"
EMBEDDING_OUTPUT = "embedding"
LOGITS_OUTPUT = "logits"
FEATURE_MAP_OUTPUT = "feature_map"
EMBEDDING_DIMENSION = 1280
NUM_CLASSES = 1000
OPSET = 17
IR_VERSION = 8  # the oldest IR that opset 17 allows, so older ONNX Runtimes (e.g. a SageMaker image) load it
BN_EPSILON = 1e-3
_NORM_FLOOR = 1e-12  # keeps an all-zero feature vector (possible after ReLU6) from dividing by zero


# What the TF Lite checkpoints were trained with: RGB [0, 255], (x - 127) / 128, bicubic resize.
def lite2_preprocess(size_px: int = INPUT_SIZE_PX) -> PreprocessSpec:
    return PreprocessSpec(size_px=size_px, mean=(127.0,) * 3, std=(128.0,) * 3, resize="center_crop")


LITE2_PREPROCESS = lite2_preprocess()


@dataclass(frozen=True)
class _Stage:
    num_blocks: int
    kernel: int
    stride: int
    expand_ratio: int
    out_channels: int


# EfficientNet-Lite2's stages; the stride applies to the first block of a stage only.
_STAGES = (
    _Stage(1, 3, 1, 1, 16),
    _Stage(3, 3, 2, 6, 24),
    _Stage(3, 5, 2, 6, 48),
    _Stage(4, 3, 2, 6, 88),
    _Stage(4, 5, 1, 6, 120),
    _Stage(5, 5, 2, 6, 208),
    _Stage(1, 3, 1, 6, 352),
)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280


def same_padding(size_px: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow "SAME": (pad_before, pad_after, output_size) along one spatial axis."""
    out = math.ceil(size_px / stride)
    pad = max((out - 1) * stride + kernel - size_px, 0)
    return pad // 2, pad - pad // 2, out


def build_lite2_model(state_dict: dict[str, np.ndarray], size_px: int = INPUT_SIZE_PX) -> onnx.ModelProto:
    """The checked ONNX model for size_px x size_px input, with a dynamic batch dimension.

    The padding of every stride-2 convolution depends on the parity of its input, so a graph is built for one
    size. Raises ModelFileError on missing/misshapen weights."""
    import onnx  # imported here so resolving an already-cached model never pays for importing onnx
    from onnx import TensorProto, helper

    if not 32 <= size_px <= 1024:
        raise ModelFileError(f"input size {size_px} px is outside 32-1024")
    graph = _GraphBuilder(state_dict)
    x, size = graph.conv_bn(INPUT_NAME, size_px, "_conv_stem", "_bn0", stride=2, relu6=True)
    in_channels = _STEM_CHANNELS
    block_index = 0
    for stage in _STAGES:
        for position in range(stage.num_blocks):
            stride = stage.stride if position == 0 else 1
            x, size = graph.mbconv(x, size, f"_blocks.{block_index}", stage, stride, in_channels)
            in_channels = stage.out_channels
            block_index += 1
    x, size = graph.conv_bn(x, size, "_conv_head", "_bn1", stride=1, relu6=True)
    graph.head(x)

    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "efficientnet_lite2",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, size_px, size_px])],
            [
                helper.make_tensor_value_info(EMBEDDING_OUTPUT, TensorProto.FLOAT, ["batch", EMBEDDING_DIMENSION]),
                helper.make_tensor_value_info(LOGITS_OUTPUT, TensorProto.FLOAT, ["batch", NUM_CLASSES]),
                helper.make_tensor_value_info(
                    FEATURE_MAP_OUTPUT, TensorProto.FLOAT, ["batch", _HEAD_CHANNELS, size, size]
                ),
            ],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="visual_search.embedders.lite2_builder.graph",
        producer_version=str(BUILDER_VERSION),
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


class _GraphBuilder:
    """Accumulates nodes and initializers; each method returns the output tensor name and its spatial size."""

    def __init__(self, state_dict: dict[str, np.ndarray]):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.weights = state_dict
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._constant("relu6_min", np.array(0.0, dtype=np.float32))
        self._constant("relu6_max", np.array(6.0, dtype=np.float32))

    def weight(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if name not in self.weights:
            raise ModelFileError(f"the checkpoint has no tensor {name}: is it EfficientNet-Lite2?")
        array = np.asarray(self.weights[name], dtype=np.float32)
        if shape is not None and array.shape != shape:
            raise ModelFileError(f"tensor {name} has shape {array.shape}, expected {shape}")
        return array

    def _constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def conv_bn(self, x: str, size: int, conv: str, bn: str, *, stride: int, relu6: bool, groups: int = 1):
        """Conv with BatchNorm folded in (w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε)), then ReLU6 when asked."""
        kernel_weights = self.weight(f"{conv}.weight")
        out_channels, _, kernel, _ = kernel_weights.shape
        gamma = self.weight(f"{bn}.weight", (out_channels,))
        beta = self.weight(f"{bn}.bias", (out_channels,))
        mean = self.weight(f"{bn}.running_mean", (out_channels,))
        variance = self.weight(f"{bn}.running_var", (out_channels,))
        scale = gamma / np.sqrt(variance + BN_EPSILON)
        folded_weights = (kernel_weights * scale[:, None, None, None]).astype(np.float32)
        folded_bias = (beta - mean * scale).astype(np.float32)

        before, after, out_size = same_padding(size, kernel, stride)
        name = conv.replace(".", "_")
        output = f"{name}_out"
        self.nodes.append(
            self.helper.make_node(
                "Conv",
                [x, self._constant(f"{name}_w", folded_weights), self._constant(f"{name}_b", folded_bias)],
                [output],
                name=name,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[before, before, after, after],  # [top, left, bottom, right]
                group=groups,
            )
        )
        if not relu6:
            return output, out_size
        activated = f"{name}_relu6"
        self.nodes.append(
            self.helper.make_node("Clip", [output, "relu6_min", "relu6_max"], [activated], name=activated)
        )
        return activated, out_size

    def mbconv(self, x: str, size: int, prefix: str, stage: _Stage, stride: int, in_channels: int):
        """Inverted residual: [1x1 expand] → k×k depthwise → 1x1 project, plus the input when shapes allow."""
        block_input = x
        hidden = in_channels * stage.expand_ratio
        if stage.expand_ratio != 1:
            self.weight(f"{prefix}._expand_conv.weight", (hidden, in_channels, 1, 1))
            x, size = self.conv_bn(x, size, f"{prefix}._expand_conv", f"{prefix}._bn0", stride=1, relu6=True)
        self.weight(f"{prefix}._depthwise_conv.weight", (hidden, 1, stage.kernel, stage.kernel))
        x, size = self.conv_bn(
            x, size, f"{prefix}._depthwise_conv", f"{prefix}._bn1", stride=stride, relu6=True, groups=hidden
        )
        self.weight(f"{prefix}._project_conv.weight", (stage.out_channels, hidden, 1, 1))
        x, size = self.conv_bn(x, size, f"{prefix}._project_conv", f"{prefix}._bn2", stride=1, relu6=False)
        if stride == 1 and in_channels == stage.out_channels:
            summed = f"{prefix.replace('.', '_')}_add"
            self.nodes.append(self.helper.make_node("Add", [x, block_input], [summed], name=summed))
            x = summed
        return x, size

    def head(self, x: str) -> None:
        """Global average pool → feature; feature / max(‖feature‖₂, floor) → embedding; feature·Wᵀ + b → logits."""
        fc_weights = self.weight("_fc.weight", (NUM_CLASSES, _HEAD_CHANNELS))
        fc_bias = self.weight("_fc.bias", (NUM_CLASSES,))
        self.nodes += [
            self.helper.make_node("Identity", [x], [FEATURE_MAP_OUTPUT], name="feature_map"),
            self.helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"),
            self.helper.make_node("Flatten", ["pooled"], ["feature"], name="flatten", axis=1),
            self.helper.make_node("ReduceL2", ["feature"], ["feature_norm"], name="l2_norm", axes=[1], keepdims=1),
            self.helper.make_node(
                "Max",
                ["feature_norm", self._constant("norm_floor", np.array(_NORM_FLOOR, np.float32))],
                ["feature_norm_floored"],
                name="l2_floor",
            ),
            self.helper.make_node("Div", ["feature", "feature_norm_floored"], [EMBEDDING_OUTPUT], name="l2_normalise"),
            self.helper.make_node(
                "Gemm",
                ["feature", self._constant("fc_w", fc_weights), self._constant("fc_b", fc_bias)],
                [LOGITS_OUTPUT],
                name="fc",
                transB=1,
            ),
        ]
