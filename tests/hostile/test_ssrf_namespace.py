"""The SSRF policy end to end, with the real fetcher inside a network namespace that has only loopback: a policy
miss fails to connect (and the test fails) instead of sending traffic anywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from hostile_support import REPO_ROOT, require_service

pytestmark = pytest.mark.timeout(120)

# Addresses the probe reached or the old policy passed, and IPv6 forms carrying private IPv4 addresses.
SPECIAL_PURPOSE_URLS = [
    "http://192.0.0.192/latest/meta-data/",
    "http://192.88.99.1/",
    "http://[fec0::1]/",
    "http://[2002:a00:1::1]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://198.18.0.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0:80/",
    "http://[::]/",
    "http://[::10.0.0.1]/",
    "http://2130706433/",
    "http://0x7f.1/",
]

_CHILD = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from pathlib import Path
from loopback_image_host import image_host
from visual_search.fetching.url_fetch import UrlFetcher
from visual_search.core.errors import VisualSearchError

photo = (Path(sys.argv[2]) / "fixtures" / "photos" / "hat.jpg").read_bytes()
outcomes = {}
with image_host(photo) as (port, log):
    fetcher = UrlFetcher(timeout_s=2)
    for url in json.loads(sys.argv[3]):
        try:
            fetcher.fetch(url)
            outcomes[url] = "fetched"
        except VisualSearchError as exc:
            outcomes[url] = f"{exc.http_status} {exc.code}: {exc.message}"
    control = f"http://127.0.0.1:{port}/photo.jpg"
    outcomes["control"] = len(UrlFetcher(allowlist=[f"127.0.0.1:{port}"]).fetch(control).data) == len(photo)
    outcomes["requests_seen"] = len(log.requests)
print(json.dumps(outcomes))
"""


def _run_in_loopback_only_namespace(urls: list[str]) -> dict:
    command = [
        "unshare",
        "-n",
        "sh",
        "-c",
        'ip link set lo up && exec "$@"',
        "sh",
        sys.executable,
        "-c",
        _CHILD,
        str(REPO_ROOT / "src"),
        str(REPO_ROOT / "tests"),
        json.dumps(urls),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _namespaces_available() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def test_special_purpose_addresses_are_refused_by_policy_not_by_a_failed_connection():
    require_service(
        _namespaces_available(),
        "a network namespace (unshare -n)",
        "run the tests as root, or with CAP_SYS_ADMIN, on Linux with util-linux and iproute2",
    )
    outcomes = _run_in_loopback_only_namespace(SPECIAL_PURPOSE_URLS)
    assert outcomes.pop("control") is True, "the allow-listed loopback host must be fetched inside the namespace"
    assert outcomes.pop("requests_seen") == 1, "only the control request may reach the loopback host"
    missed = {url: outcome for url, outcome in outcomes.items() if not outcome.startswith("400 url_refused")}
    assert not missed, f"the policy let these through (they failed only at connect): {missed}"
