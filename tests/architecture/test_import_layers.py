"""The rooms of src/visual_search and the import rules between them, as pyproject.toml's import-linter contracts
state them: the real tree keeps every contract, and a reversed import is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="lint-imports missing: make install")


def _lint(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_contract():
    result = _lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "importer, imported, contract",
    [
        ("core/records.py", "visual_search.services.search", "Core imports no adapter"),
        ("services/search.py", "visual_search.api.search_api", "Layers"),
        ("indexes/local/index.py", "visual_search.indexes.opensearch.index", "Index adapters are independent"),
        ("server/app.py", "visual_search.aws.handlers", "do not import each other"),
        ("server/app.py", "visual_search.stores.local_folder", "Entry points construct nothing"),
        ("aws/handlers.py", "visual_search.services.indexing", "Entry points construct nothing"),
        ("cli/commands.py", "visual_search.embedders.onnx.embedder", "Entry points construct nothing"),
    ],
)
def test_a_reversed_import_is_caught(tmp_path, importer, imported, contract):
    shutil.copytree(ROOT / "src" / "visual_search", tmp_path / "visual_search")
    module = tmp_path / "visual_search" / importer
    module.write_text(module.read_text() + f"\nimport {imported}  # reversed on purpose\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert contract in result.stdout and "BROKEN" in result.stdout
