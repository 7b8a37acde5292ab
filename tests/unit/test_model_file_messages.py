"""A damaged ONNX file gives a message a person can act on, without exception class names (the issue-13 rule):
through a custom model's config and when ONNX Runtime opens the file."""

from __future__ import annotations

import json
import logging
import re

import pytest

from visual_search.core.errors import ModelFileError
from visual_search.core.images import PreprocessSpec
from visual_search.embedders.onnx.custom_model import load_custom_model
from visual_search.embedders.onnx.embedder import OnnxEmbedder
from visual_search.embedders.onnx.resolved_model import ResolvedModel

CLASS_NAME = re.compile(r"\b\w*(Error|Exception|Fail)\b|\[ONNXRuntime")


@pytest.fixture
def damaged_onnx(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)  # a protobuf tag, then nothing an ONNX graph could be
    return path


def test_a_custom_model_whose_onnx_file_is_damaged_says_to_export_it_again(tmp_path, damaged_onnx):
    config = tmp_path / "model.json"
    config.write_text(
        json.dumps(
            {
                "onnx_path": damaged_onnx.name,
                "input_name": "input",
                "output_name": "embedding",
                "input_size_px": 224,
                "mean": 127.5,
                "std": 127.5,
            }
        )
    )
    with pytest.raises(ModelFileError) as refused:
        load_custom_model(config)
    message = refused.value.message
    assert str(damaged_onnx) in message and "export it again" in message
    assert not CLASS_NAME.search(message), message


def test_onnx_runtime_refusing_a_file_says_what_to_do_and_logs_its_own_words(damaged_onnx, caplog):
    model = ResolvedModel(
        model_id="damaged",
        onnx_path=damaged_onnx,
        spec=PreprocessSpec(),
        input_name="input",
        embedding_output="embedding",
        dimension=4,
    )
    with caplog.at_level(logging.WARNING), pytest.raises(ModelFileError) as refused:
        OnnxEmbedder(model, intra_op_threads=1)._create_session()
    message = refused.value.message
    assert str(damaged_onnx) in message and "delete it to rebuild" in message
    assert not CLASS_NAME.search(message), message
    assert "could not load" in caplog.text and caplog.records[-1].exc_info, "the runtime's own error is logged"
