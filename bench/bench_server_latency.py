"""Latency of POST /search on loopback: a 400 px upload and a 12 MP upload, 1 and 4 concurrent clients.

Starts the real server (`run_server`, uvicorn) in a child process over a fresh index of the demo catalogue,
and measures in this process, in the same run, the floor: JPEG decode (as the service decodes) and model-only
time. "Overhead" is the server's p50 minus (decode p50 + model p50): HTTP, parsing, validation, index search
and response shaping. Then the first search of a photo as the UI sends it: /search with "regions": true
against a plain /search, and the POST /regions request, in alternation. Prints machine facts and one JSON
document; the request count is bounded.

    .venv/bin/python bench/bench_server_latency.py [--model lite2-fp32] [--requests 200] [--out result.json]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`
from PIL import Image

from visual_search.bootstrap import build_embedder
from visual_search.core.images import decode_image
from visual_search.core.settings import Settings
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.indexing import IndexingService, IndexItem

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = REPO / "demo" / "catalogue" / "images"
PHOTO_400 = REPO / "tests" / "fixtures" / "photos" / "hat.jpg"
SERVER_CODE = (
    "import sys; from visual_search.server.app import run_server; from visual_search.core.settings import Settings; "
    "run_server(Settings.from_env(), port=int(sys.argv[1]))"
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))], 2)


def summary(values: list[float]) -> dict:
    return {"p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95), "n": len(values)}


def timed(call, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def twelve_megapixel_jpeg() -> bytes:
    """A real photo upscaled to 4000x3000 and saved as a q90 JPEG, like a phone camera's."""
    image = Image.open(PHOTO_400).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def build_index(settings: Settings, embedder) -> int:
    index = LocalIndex(settings.index, model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
    items = [IndexItem(key=p.name, uri=str(p), read=p.read_bytes) for p in sorted(CATALOGUE.glob("*.jpg"))]
    report = IndexingService(embedder, index).index_items(items)
    count = index.count()
    index.close()
    if report.failed:
        raise RuntimeError(f"indexing failed for {len(report.failed)} files")
    return count


def floor(embedder, photo: bytes, repeats: int) -> dict:
    """Decode and model-only times, measured here while the server is idle. The model step is what a query with
    colour weight 0 computes (embed_query where the embedder has it: preprocessing, network, pooling)."""
    size = embedder.spec.size_px
    decoded = decode_image(photo, min_size_px=size)
    if hasattr(embedder, "embed_query"):
        model_step = lambda: embedder.embed_query(decoded.image, with_colour=False)  # noqa: E731
    else:
        model_step = lambda: embedder.embed([decoded.image])  # noqa: E731
    model_step()  # warm-up
    decode_ms = timed(lambda: decode_image(photo, min_size_px=size), repeats)
    model_ms = timed(model_step, repeats)
    return {"decode": summary(decode_ms), "model": summary(model_ms)}


def hotspot_requests(base_url: str, photo: bytes, requests: int) -> dict:
    """Server time of the first search the UI sends for a photo, against a plain search, in alternation:
    POST /search with "regions": true (how the UI asked before) and POST /regions (how it asks now, after the
    results); a server without /regions reports None for it."""
    image = base64.b64encode(photo).decode()
    bodies = {"plain": {"image": image}, "search_with_regions": {"image": image, "regions": True}}
    took: dict[str, list[float]] = {name: [] for name in (*bodies, "regions_request")}
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with httpx.Client(base_url=base_url, timeout=120, transport=transport) as http:
        has_regions_route = http.post("/regions", json={"image": image}).status_code == 200
        for number in range(requests + 2):
            for name, body in bodies.items():
                response = http.post("/search", json=body)
                response.raise_for_status()
                if number >= 2:  # the first two rounds warm up
                    took[name].append(response.json()["took_ms"])
            if has_regions_route:
                response = http.post("/regions", json={"image": image})
                response.raise_for_status()
                if number >= 2:
                    took["regions_request"].append(response.json()["took_ms"])
    result = {name: summary(values) if values else None for name, values in took.items()}
    plain = result["plain"]["p50_ms"]
    result["search_with_regions_over_plain"] = round(result["search_with_regions"]["p50_ms"] / plain, 2)
    if result["regions_request"]:
        result["regions_request_over_plain"] = round(result["regions_request"]["p50_ms"] / plain, 2)
    return result


def load(base_url: str, photo: bytes, clients: int, requests: int) -> dict:
    latencies: list[float] = []
    server_ms: list[float] = []
    lock = threading.Lock()

    def client(count: int) -> None:
        # TCP_NODELAY as browsers set it: without it Nagle holds the body behind the headers until the server's
        # delayed ACK, adding tens of milliseconds that no real client pays.
        transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        with httpx.Client(base_url=base_url, timeout=60, transport=transport) as http:
            for _ in range(count):
                started = time.perf_counter()
                response = http.post("/search", content=photo, headers={"Content-Type": "image/jpeg"})
                elapsed = (time.perf_counter() - started) * 1000.0
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                    server_ms.append(response.json()["took_ms"])

    client(max(3, requests // 20))  # warm-up, not recorded
    latencies.clear()
    server_ms.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, [requests // clients] * clients))
    seconds = time.perf_counter() - started
    return {
        "clients": clients,
        "client_observed": summary(latencies),
        "server_took_ms": summary(server_ms),
        "throughput_rps": round(len(latencies) / seconds, 1),
    }


def start_server(settings_env: dict, port: int) -> subprocess.Popen:
    env = dict(os.environ, **settings_env)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE, str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read().decode()[-2000:]}")
    process.kill()
    raise RuntimeError("the server did not become healthy within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite2-fp32")
    parser.add_argument("--requests", type=int, default=200, help="per scenario for the 400 px photo")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-server-") as workdir:
        settings = Settings(index=str(Path(workdir) / "index"), model=args.model)
        embedder = build_embedder(settings)
        photos = {"400px": PHOTO_400.read_bytes(), "12mp": twelve_megapixel_jpeg()}
        result = {
            "machine": machine_facts(),
            "model": args.model,
            "model_id": embedder.model_id,
            "indexed": build_index(settings, embedder),
            "scenarios": {},
        }
        server = start_server({"VISUAL_SEARCH_INDEX": settings.index, "VISUAL_SEARCH_MODEL": args.model}, args.port)
        try:
            for name, photo in photos.items():
                requests = args.requests if name == "400px" else max(20, args.requests // 4)
                runs = [load(f"http://127.0.0.1:{args.port}", photo, clients, requests) for clients in (1, 4)]
                result["scenarios"][name] = {"bytes": len(photo), "runs": runs}
            result["hotspots_400px"] = hotspot_requests(
                f"http://127.0.0.1:{args.port}", photos["400px"], max(5, args.requests // 20)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        for name, photo in photos.items():
            scenario = result["scenarios"][name]
            scenario["floor"] = floor(embedder, photo, max(20, args.requests // 4))
            base = scenario["floor"]["decode"]["p50_ms"] + scenario["floor"]["model"]["p50_ms"]
            single = scenario["runs"][0]
            scenario["overhead_p50_ms"] = {
                "client_observed": round(single["client_observed"]["p50_ms"] - base, 2),
                "server_took_ms": round(single["server_took_ms"]["p50_ms"] - base, 2),
            }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
