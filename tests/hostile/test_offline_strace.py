"""The product phones nowhere (issue 13, finding 9): `index`, `serve` with a search by upload and by an
allow-listed loopback URL, and a CLI `search` run under `strace -f -e trace=network` (Debian's strace), and
every connect or datagram goes to loopback or a local socket: no DNS, no telemetry. ONNX Runtime writes no
device id under the home folder either."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cli_runner import VISUAL_SEARCH, clean_env, needs_local_model
from corpus import demo_photo_paths, real_jpeg
from hostile_support import require_service
from loopback_image_host import image_host
from platformdirs import user_cache_dir

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow, needs_local_model]
# An address in a connect/sendto/sendmsg: IPv4 inet_addr("a.b.c.d") or IPv6 inet_pton(AF_INET6, "x").
_INET = re.compile(r'sa_family=AF_INET6?, sin6?_port=htons\((\d+)\).*?(?:inet_addr\("|inet_pton\(AF_INET6, ")([^"]+)"')
_LOOPBACK = re.compile(r"^(127\.|::1$|::ffff:127\.)")


def _strace(trace: Path, *args: str) -> list[str]:
    return ["strace", "-f", "-qq", "-e", "trace=network", "-o", str(trace), str(VISUAL_SEARCH), *args]


def _environment(home: Path) -> dict[str, str]:
    # A fresh HOME shows anything written under it; the built models stay where they are (no rebuild).
    return clean_env(
        HOME=str(home), VISUAL_SEARCH_CACHE_DIR=user_cache_dir("visual-search"), XDG_CACHE_HOME=str(home / ".cache")
    )


def _off_machine(trace: Path) -> list[str]:
    """Lines of the trace that reach an address other than loopback (AF_UNIX and netlink are local by nature)."""
    offending = []
    for line in trace.read_text(errors="replace").splitlines():
        if not re.search(r"\b(connect|sendto|sendmsg|sendmmsg)\(", line):
            continue
        for _port, address in _INET.findall(line):
            if not _LOOPBACK.match(address):
                offending.append(line.strip())
    return offending


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_index_serve_and_search_touch_nothing_but_loopback(tmp_path):
    require_service(shutil.which("strace") is not None, "strace", "install Debian's package: apt-get install strace")
    home, catalogue, index_dir = tmp_path / "home", tmp_path / "catalogue", tmp_path / "index"
    home.mkdir()
    catalogue.mkdir()
    for photo in demo_photo_paths()[:3]:
        shutil.copy(photo, catalogue / photo.name)
    env = _environment(home)

    index_trace = tmp_path / "index.trace"
    indexed = subprocess.run(
        _strace(index_trace, "index", str(catalogue), "--index-dir", str(index_dir), "--quiet"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert indexed.returncode == 0, indexed.stderr[-2000:]

    search_trace = tmp_path / "search.trace"
    searched = subprocess.run(
        _strace(search_trace, "search", str(demo_photo_paths()[5]), "--index-dir", str(index_dir)),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert searched.returncode == 0, searched.stderr[-2000:]

    serve_trace = tmp_path / "serve.trace"
    with image_host(real_jpeg()) as (host_port, host_log):
        port = _free_port()
        server = subprocess.Popen(
            _strace(serve_trace, "serve", "--port", str(port), "--index-dir", str(index_dir)),
            env={**env, "VISUAL_SEARCH_URL_ALLOWLIST": f"127.0.0.1:{host_port}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            upload = httpx.post(
                base + "/search", content=real_jpeg(), headers={"content-type": "image/jpeg"}, timeout=60
            )
            by_url = httpx.post(base + "/search", json={"url": f"http://127.0.0.1:{host_port}/photo.jpg"}, timeout=60)
            time.sleep(3)  # room for anything a library would send in the background
        finally:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
    assert upload.status_code == 200 and by_url.status_code == 200, (upload.text[:200], by_url.text[:200])
    assert host_log.requests, "the URL the user asked for was fetched"

    for trace in (index_trace, search_trace, serve_trace):
        assert trace.stat().st_size > 0, f"strace wrote nothing to {trace.name}"
        assert _off_machine(trace) == [], f"{trace.name}: traffic off this machine"
    assert "connect(" in serve_trace.read_text(), "the trace must show the loopback fetch, or it proves nothing"
    written = [str(path.relative_to(home)) for path in home.rglob("*")]
    assert not any("Microsoft" in path or "onnxruntime" in path for path in written), written
