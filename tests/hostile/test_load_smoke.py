"""A short run of bench/load_test.py (2 clients, 5 s, 24 catalogue photos): the real server under concurrent
uploads, loopback URL queries and more-like-this answers every request 200, with no 5xx and no dropped connection.
The full run (8 clients, 60 s, RSS growth < 10%) is `bench/load_test.py`; its figures are in docs/BENCHMARKS.md."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from cli_runner import needs_local_model
from corpus import REPO_ROOT

pytestmark = [needs_local_model, pytest.mark.timeout(240)]


def load_bench_module(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "bench"))  # as when run as `python bench/load_test.py`
    spec = importlib.util.spec_from_file_location("load_test", REPO_ROOT / "bench" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_short_load_run_has_no_5xx_and_every_kind_succeeds(monkeypatch):
    for name in ("VISUAL_SEARCH_API_KEY", "VISUAL_SEARCH_INDEX", "VISUAL_SEARCH_INDEX_DIR"):
        monkeypatch.delenv(name, raising=False)
    load_test = load_bench_module(monkeypatch)
    report = load_test.run(clients=2, duration_s=5.0, warmup_s=1.0, images=24)
    assert report["server_errors_5xx"] == 0
    assert report["transport_errors"] == 0
    assert report["non_200"] == 0, report["kinds"]
    assert all(report["kinds"][kind]["requests"] > 0 for kind in ("upload", "url", "key")), report["kinds"]
    assert report["server_alive_after"]
    assert report["rss_mib"]["end"] > 0 and report["p99_ms"] is not None
