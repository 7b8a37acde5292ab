"""Helpers the hostile-input tests import by name: a module name no other test folder shares, unlike `conftest`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from corpus import known_key
from fakes import indexed_hashes
from service_check import require_service  # noqa: F401 - re-exported for the hostile tests

from visual_search.indexes.local.index import LocalIndex

REPO_ROOT = Path(__file__).resolve().parents[2]
INDEXED_PHOTOS = 12
# What a Python stack trace looks like in text: the header, or a frame line.
_STACK_TRACE = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line \d+')


def assert_no_stack_trace(text: str) -> None:
    match = _STACK_TRACE.search(text)
    assert match is None, f"a stack trace leaked: ...{text[max(0, match.start() - 200) : match.end() + 200]}..."


@dataclass(frozen=True)
class IndexSnapshot:
    """What a bad query must never change: the record count, every key's content hash, one key's vector."""

    count: int
    hashes: dict[str, str]
    vector: bytes

    @classmethod
    def of(cls, directory: Path) -> IndexSnapshot:
        with LocalIndex(directory, writable=False) as index:
            vector = index.get_vector(known_key())
            assert vector is not None, "the known key must be indexed"
            return cls(index.count(), indexed_hashes(index), np.asarray(vector, dtype=np.float32).tobytes())
