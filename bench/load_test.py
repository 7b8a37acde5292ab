"""A bounded load test of the local server: N concurrent clients for D seconds on loopback, then it stops by itself.

What runs:
- a fresh index of the demo catalogue (`visual-search index`, unless --index-dir names an existing one);
- the real server, `visual-search serve`, as a child process on a free 127.0.0.1 port, with
  VISUAL_SEARCH_URL_ALLOWLIST naming only the loopback image server below;
- a loopback image server (a thread here) serving the demo photos, for the URL queries;
- N asyncio + httpx clients, each looping over a mix of: an upload (multipart, as the web UI sends it), a URL
  query, and "more like this" by key; every request is timed from send to complete response.

Reports (one JSON document on stdout, and --out FILE): per kind, requests, throughput, p50/p95/p99/max latency
and status counts; the total of 5xx and of transport errors (both must be zero); the server's RSS after start-up,
after a warm-up (the baseline: the model's arenas and the index matrix are allocated by the first requests), and
at the end, with the growth from the baseline (must be < 10%); machine facts and the date.
Exit status 1 if any 5xx, transport error, or RSS growth >= 10%.

    .venv/bin/python bench/load_test.py [--clients 8] [--duration-s 60] [--warmup-s 5] [--out result.json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_IMAGES = REPO_ROOT / "demo" / "catalogue" / "images"
DEMO_LABELS = REPO_ROOT / "demo" / "catalogue" / "labels.csv"
KINDS = ("upload", "url", "key")
MAX_RSS_GROWTH = 0.10


@dataclass
class KindStats:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0

    def record(self, status: int, elapsed_ms: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies_ms.append(elapsed_ms)

    def summary(self, seconds: float) -> dict:
        ordered = sorted(self.latencies_ms)
        return {
            "requests": len(ordered),
            "per_s": round(len(ordered) / seconds, 1) if seconds > 0 else 0.0,
            "p50_ms": percentile(ordered, 50),
            "p95_ms": percentile(ordered, 95),
            "p99_ms": percentile(ordered, 99),
            "max_ms": round(ordered[-1], 1) if ordered else None,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "transport_errors": self.transport_errors,
        }


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * pct // 100))
    return round(ordered[int(rank) - 1], 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class LoopbackImageServer:
    """Serves a folder over HTTP on 127.0.0.1 (a free port) from a daemon thread, without request logs."""

    def __init__(self, folder: Path):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="image-server", daemon=True)

    def __enter__(self) -> LoopbackImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def visual_search_command() -> list[str]:
    script = Path(sys.executable).with_name("visual-search")
    return [str(script)] if script.exists() else [sys.executable, "-m", "visual_search.cli.main"]


def build_index(index_dir: Path, images: list[Path], env: dict) -> None:
    command = visual_search_command() + ["index", *map(str, images), "--index-dir", str(index_dir), "--quiet"]
    if DEMO_LABELS.exists():
        command += ["--labels", str(DEMO_LABELS)]
    subprocess.run(command, check=True, env=env, timeout=600, stdout=subprocess.DEVNULL)


class ServerProcess:
    """`visual-search serve` on a free loopback port; stopped (TERM, then KILL) on exit."""

    def __init__(self, index_dir: Path, env: dict):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = visual_search_command() + [
            "serve",
            "--index-dir",
            str(index_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                response = httpx.get(self.base_url + "/health", timeout=2.0)
                if response.status_code == 200:
                    return response.json()
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer /health within {timeout_s:g} s:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.log.close()


class Workload:
    """The request mix. Upload bodies are read once; URL and key queries name random catalogue images."""

    def __init__(self, base_url: str, images: list[Path], image_base_url: str, weights: dict[str, float]):
        self.base_url = base_url
        self.names = [path.name for path in images]
        self.photos = [path.read_bytes() for path in images[:64]]
        self.image_base_url = image_base_url
        self.kinds = [kind for kind in KINDS if weights.get(kind, 0) > 0]
        self.weights = [weights[kind] for kind in self.kinds]

    async def one(self, client: httpx.AsyncClient, kind: str, rng: random.Random) -> httpx.Response:
        if kind == "upload":
            files = {"file": ("query.jpg", rng.choice(self.photos), "image/jpeg")}
            return await client.post("/search", files=files, data={"k": "12"})
        if kind == "url":
            return await client.post(
                "/search", json={"url": f"{self.image_base_url}/{rng.choice(self.names)}", "k": 12}
            )
        return await client.post("/search", json={"key": rng.choice(self.names), "k": 12})


async def run_clients(
    workload: Workload, clients: int, duration_s: float, seed: int
) -> tuple[dict[str, KindStats], float]:
    stats = {kind: KindStats() for kind in KINDS}
    stop_at = time.monotonic() + duration_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(number: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + number)
        while time.monotonic() < stop_at:
            kind = rng.choices(workload.kinds, workload.weights)[0]
            started = time.perf_counter()
            try:
                response = await workload.one(client, kind, rng)
            except httpx.TransportError:
                stats[kind].transport_errors += 1
                continue
            stats[kind].record(response.status_code, (time.perf_counter() - started) * 1000.0)

    # The timeout bounds a stuck request; the loop bounds the run. Nothing here waits past stop_at + timeout.
    async with httpx.AsyncClient(base_url=workload.base_url, timeout=30.0, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(client_loop(number, client) for number in range(clients)))
        elapsed = time.monotonic() - started
    return stats, elapsed


def run(
    clients: int = 8,
    duration_s: float = 60.0,
    warmup_s: float = 5.0,
    images: int | None = None,
    index_dir: str | None = None,
    model: str | None = None,
    seed: int = 6,
    weights: dict[str, float] | None = None,
) -> dict:
    """Runs the whole load test and returns the report (a dict). Stops by itself after warmup_s + duration_s."""
    weights = weights or {kind: 1.0 for kind in KINDS}
    load_at_start = os.getloadavg()[0]  # other processes on the machine compete with the server and the clients
    catalogue = sorted(DEMO_IMAGES.glob("*.jpg"))[:images]
    scratch = Path(tempfile.mkdtemp(prefix="visual-search-load-"))
    server = None
    try:
        with LoopbackImageServer(DEMO_IMAGES) as image_server:
            env = {**os.environ, "VISUAL_SEARCH_URL_ALLOWLIST": f"127.0.0.1:{image_server.port}"}
            env.pop("VISUAL_SEARCH_API_KEY", None)
            if model:
                env["VISUAL_SEARCH_MODEL"] = model
            index_path = Path(index_dir) if index_dir else scratch / "index"
            index_started = time.monotonic()
            if not index_dir:
                build_index(index_path, catalogue, env)
            index_s = time.monotonic() - index_started
            server = ServerProcess(index_path, env)
            health = server.wait_ready()
            rss_started = rss_bytes(server.process.pid)
            workload = Workload(server.base_url, catalogue, f"http://127.0.0.1:{image_server.port}", weights)
            warmup, _ = asyncio.run(run_clients(workload, clients, warmup_s, seed + 1))
            rss_baseline = rss_bytes(server.process.pid)
            stats, elapsed = asyncio.run(run_clients(workload, clients, duration_s, seed))
            rss_end = rss_bytes(server.process.pid)
            alive = (
                server.process.poll() is None and httpx.get(server.base_url + "/health", timeout=5).status_code == 200
            )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    total = sum(len(s.latencies_ms) for s in stats.values())
    server_errors = sum(count for s in stats.values() for status, count in s.statuses.items() if status >= 500)
    transport_errors = sum(s.transport_errors for s in stats.values())
    non_200 = sum(count for s in stats.values() for status, count in s.statuses.items() if status != 200)
    growth = (rss_end - rss_baseline) / rss_baseline
    all_latencies = sorted(latency for s in stats.values() for latency in s.latencies_ms)
    return {
        "benchmark": "load_test",
        "machine": machine_facts(),
        "config": {
            "clients": clients,
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "catalogue_images": len(catalogue),
            "mix": weights,
            "model": health.get("model_id"),
            "seed": seed,
        },
        "index_build_s": round(index_s, 1),
        "elapsed_s": round(elapsed, 1),
        "requests": total,
        "per_s": round(total / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": percentile(all_latencies, 50),
        "p95_ms": percentile(all_latencies, 95),
        "p99_ms": percentile(all_latencies, 99),
        "kinds": {kind: stats[kind].summary(elapsed) for kind in KINDS},
        "warmup_requests": sum(len(s.latencies_ms) for s in warmup.values()),
        "server_errors_5xx": server_errors,
        "transport_errors": transport_errors,
        "non_200": non_200,
        "server_alive_after": alive,
        "rss_mib": {
            "after_start": round(rss_started / 2**20, 1),
            "baseline_after_warmup": round(rss_baseline / 2**20, 1),
            "end": round(rss_end / 2**20, 1),
        },
        "rss_growth": round(growth, 4),
        "load_average_1m": {"start": round(load_at_start, 2), "end": round(os.getloadavg()[0], 2)},
        "passed": server_errors == 0 and transport_errors == 0 and growth < MAX_RSS_GROWTH and alive,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--images", type=int, help="index only the first N demo photos (default: all)")
    parser.add_argument("--index-dir", help="use this existing index of the demo catalogue instead of building one")
    parser.add_argument("--model", help="the model to index and serve with (default: the product's default)")
    parser.add_argument("--mix", default="upload=1,url=1,key=1", help="relative weights, e.g. upload=2,url=1,key=1")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--out", help="also write the JSON report to this file")
    args = parser.parse_args(argv)
    weights = {name: float(value) for name, value in (part.split("=") for part in args.mix.split(","))}
    report = run(
        args.clients, args.duration_s, args.warmup_s, args.images, args.index_dir, args.model, args.seed, weights
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
