"""Running the real `visual-search` console script as a subprocess, with a clean VISUAL_SEARCH_* environment."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_support import assert_no_stack_trace

VISUAL_SEARCH = Path(sys.executable).with_name("visual-search")


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("VISUAL_SEARCH_")}
    env.update(extra)
    return env


def run_cli(*args: str, timeout_s: float = 120, check_trace: bool = True) -> subprocess.CompletedProcess:
    """`visual-search ARGS...`; asserts that neither output stream holds a stack trace."""
    result = subprocess.run(
        [str(VISUAL_SEARCH), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )
    if check_trace:
        assert_no_stack_trace(result.stderr)
        assert_no_stack_trace(result.stdout)
    return result


def local_model_available() -> bool:
    return VISUAL_SEARCH.exists() and importlib.util.find_spec("visual_search.embedders.onnx.embedder") is not None


# The CLI runs the real in-process model: skipped locally while its module is missing, never skipped in CI.
needs_local_model = pytest.mark.skipif(
    not local_model_available() and os.environ.get("CI", "").lower() != "true",
    reason="the in-process ONNX embedder (visual_search.embedders.onnx.embedder) is not installed yet",
)
