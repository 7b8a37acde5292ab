"""Shared fixtures: where the real services are, and whether a missing one skips (locally) or fails (CI=true)."""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_PHOTOS = REPO_ROOT / "tests" / "fixtures" / "photos"
DEMO_CATALOGUE = REPO_ROOT / "demo" / "catalogue"
from service_check import IN_CI, require_service  # noqa: E402,F401 - re-exported: tests import it from here


def opensearch_base_url() -> str:
    return os.environ.get("VISUAL_SEARCH_TEST_OPENSEARCH_URL", "http://127.0.0.1:9200")


def _opensearch_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_cluster/health", timeout=3) as response:
            return response.status == 200
    except Exception:
        return False


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    url = opensearch_base_url()
    require_service(_opensearch_up(url), f"OpenSearch at {url}", "start one with `scripts/opensearch.sh start`")
    return url


CHROMIUM_PATH = os.environ.get("VISUAL_SEARCH_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    require_service(
        Path(CHROMIUM_PATH).exists() or shutil.which(CHROMIUM_PATH) is not None,
        f"Chromium at {CHROMIUM_PATH}",
        "install Debian's package with `sudo apt-get install chromium` (never `playwright install`)",
    )
    return CHROMIUM_PATH
