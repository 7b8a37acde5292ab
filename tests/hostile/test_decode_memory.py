"""Memory amplification (issue 13, finding 7): twenty concurrent uploads of small PNGs that each decode to 64 MP
keep the real server (`visual-search serve`, the in-process model) under 1.5 GB resident, each answer is a 200
or a 503 with Retry-After, and the memory is given back afterwards."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cli_runner import VISUAL_SEARCH, clean_env, needs_local_model, run_cli
from corpus import demo_photo_paths, real_jpeg
from PIL import Image

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow, needs_local_model]
UPLOADS = 20
PEAK_LIMIT_MB = 1536
RETURNED_WITHIN_MB = 200  # of the warm baseline, once the burst is over


def _bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8000, 8000), (180, 40, 40)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def _memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("memory-index")
    photos = [str(path) for path in demo_photo_paths()[:4]]
    assert run_cli("index", *photos, "--index-dir", str(index_dir), "--quiet").returncode == 0
    port = _free_port()
    process = subprocess.Popen(
        [str(VISUAL_SEARCH), "serve", "--port", str(port), "--index-dir", str(index_dir)],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_twenty_concurrent_64mp_uploads_stay_bounded_and_memory_comes_back(server):
    base, pid = server

    def search(body: bytes) -> httpx.Response:
        return httpx.post(base + "/search", content=body, headers={"content-type": "image/png"}, timeout=120)

    assert (
        httpx.post(
            base + "/search", content=real_jpeg(), headers={"content-type": "image/jpeg"}, timeout=60
        ).status_code
        == 200
    )
    baseline = _memory_mb(pid)["VmRSS"]
    bomb = _bomb_png()
    assert len(bomb) < 1024 * 1024, "the point is a small file that decodes huge"
    with ThreadPoolExecutor(UPLOADS) as pool:
        responses = list(pool.map(search, [bomb] * UPLOADS))
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses, "the budget must let some of them through"
    for response in responses:
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "busy" and int(response.headers["retry-after"]) > 0
    peak = _memory_mb(pid)["VmHWM"]
    assert peak < PEAK_LIMIT_MB, f"peak RSS {peak:.0f} MB (baseline {baseline:.0f} MB)"
    time.sleep(2)
    after = _memory_mb(pid)["VmRSS"]
    assert after < baseline + RETURNED_WITHIN_MB, f"RSS {after:.0f} MB after the burst, {baseline:.0f} MB before"
    print(f"baseline {baseline:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB, statuses {statuses}")
