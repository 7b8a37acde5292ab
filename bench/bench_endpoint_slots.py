"""Do shoppers' searches still get an endpoint slot during an upload burst? (issue 23 §2.4)

A serverless endpoint has MaxConcurrency slots (template: ServerlessMaxConcurrency, 5); a request beyond them is
refused at once with a ThrottlingException (429), which the library's SageMaker client retries with backoff
inside its budget. The index function's event source mapping runs at most IndexMaxConcurrency invocations, each
holding one slot at a time (a batch of 10 is one request). This benchmark runs that arithmetic for real: an
endpoint on loopback with 5 slots (429 beyond), holding each request for a modelled service time, the real
SageMakerEmbedder client (its retries, backoff and budget) on both sides; K index workers sending batches of 10
back to back while one shopper searches one image at a time. Reported per K: the searches' p50/p95 latency, how
many needed retries, how many failed (503 after the 10 s budget).

It measures the slot contention only, not the endpoint's speed: the service times are a model (SERVICE_S), the
same for every K, so the ratios between K=5 (the old default) and K=2 (the new one) are the result.
The local sam loop (scripts/sam_local) cannot show this: it hands one batch at a time to the function, and its
endpoint stand-in has no slots.

    .venv/bin/python bench/bench_endpoint_slots.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_facts  # noqa: E402

from visual_search.embedders.sagemaker import protocol  # noqa: E402
from visual_search.embedders.sagemaker.client import SageMakerEmbedder  # noqa: E402

SLOTS = 5  # ServerlessMaxConcurrency's default
BATCH = 10  # IndexBatchSize's maximum: one endpoint request per index invocation
SERVICE_S = (0.15, 0.08)  # modelled: per request, plus per image (a warm CPU endpoint, EfficientNet-Lite2)
DIMENSION = 8


class SlottedEndpoint:
    """SageMaker's runtime route with SLOTS concurrent requests; the next one is throttled (429) at once."""

    def __init__(self, slots: int = SLOTS):
        self.slots = threading.BoundedSemaphore(slots)
        self.throttled = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if not endpoint.slots.acquire(blocking=False):
                    endpoint.throttled += 1
                    return self._answer(429, {"__type": "ThrottlingException", "message": "Rate exceeded"})
                try:
                    single = not body.lstrip().startswith(b"{")  # one image is sent as the raw PNG
                    images = 1 if single else len(json.loads(body).get("images", [None]))
                    time.sleep(SERVICE_S[0] + SERVICE_S[1] * images)
                    vectors = np.random.default_rng().normal(size=(images, DIMENSION)).astype(np.float32)
                    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                    self._answer(200, protocol.encode_response(vectors, "m"))
                finally:
                    endpoint.slots.release()

            def _answer(self, status: int, payload):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                if status >= 400:
                    self.send_header("x-amzn-ErrorType", json.loads(data)["__type"])
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def client(url: str, budget_s: float) -> SageMakerEmbedder:
    return SageMakerEmbedder(
        "bench", endpoint_url=url, region_name="us-east-1", model_id="m", dimension=DIMENSION, budget_s=budget_s
    )


def run(index_workers: int, seconds: float) -> dict:
    endpoint = SlottedEndpoint()
    image = Image.new("RGB", (64, 64), (120, 80, 40))
    stop = threading.Event()
    batches = [0]

    def index_worker():
        embedder = client(endpoint.url, budget_s=30)  # the index function's budget
        while not stop.is_set():
            try:
                embedder.embed([image] * BATCH)
                batches[0] += 1
            except Exception:  # noqa: BLE001 - a failed batch is redelivered; the burst goes on
                pass

    workers = [threading.Thread(target=index_worker, daemon=True) for _ in range(index_workers)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # the burst is under way
    search = client(endpoint.url, budget_s=10)  # the search function's budget
    latencies, failures = [], 0
    ends = time.monotonic() + seconds
    throttled_before = endpoint.throttled
    while time.monotonic() < ends:
        started = time.monotonic()
        try:
            search.embed([image])
            latencies.append(time.monotonic() - started)
        except Exception:  # noqa: BLE001 - a 503 to the shopper
            failures += 1
        time.sleep(0.2)  # a shopper's pace
    stop.set()
    for worker in workers:
        worker.join(timeout=40)
    endpoint.server.shutdown()
    alone = SERVICE_S[0] + SERVICE_S[1]
    return {
        "index_workers": index_workers,
        "searches": len(latencies) + failures,
        "search_failures": failures,
        "search_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "search_p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        "searches_slowed_by_retries": sum(1 for latency in latencies if latency > 1.5 * alone),
        "throttled_requests": endpoint.throttled - throttled_before,
        "index_batches": batches[0],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # boto3 signs even a loopback request
        os.environ.setdefault(name, "bench")
    results = [run(workers, args.seconds) for workers in (5, 2)]
    print(json.dumps({"machine": machine_facts(load_average_at_end=os.getloadavg()), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
