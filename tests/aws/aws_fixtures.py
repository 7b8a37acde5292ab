"""Helpers for the AWS tests (a module of its own name: several test folders have a conftest.py).

The loopback endpoint is a real HTTP server speaking SageMaker's runtime route over sagemaker_protocol, so boto3
signs, sends and parses real requests; it can be told to throttle the next N calls.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from visual_search.embedders.sagemaker import protocol as sagemaker_protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_IMAGES = REPO_ROOT / "demo" / "catalogue" / "images"
EVENTS_DIR = REPO_ROOT / "events"
REGION = "us-east-1"
BUCKET = "visual-search-images-123456789012-0123456789ab"  # the shape of the template's bucket name


class LoopbackEndpoint:
    """`POST /endpoints/{name}/invocations` on 127.0.0.1, served by sagemaker_protocol over `embedder`."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.throttle_next = 0
        self.requests: list[tuple[str, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                match = re.fullmatch(r"/endpoints/([^/]+)/invocations", self.path)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                content_type = self.headers.get("content-type", "")
                endpoint.requests.append((match.group(1) if match else self.path, content_type))
                if match is None:
                    return self._answer(404, {"__type": "ValidationError", "message": "no such endpoint"})
                if endpoint.throttle_next > 0:
                    endpoint.throttle_next -= 1
                    return self._answer(429, {"__type": "ThrottlingException", "message": "Rate exceeded"})
                try:
                    self._answer(200, sagemaker_protocol.invoke(endpoint.embedder, body, content_type))
                except Exception as exc:  # noqa: BLE001 - answered as SageMaker wraps a model's failure
                    status, payload = sagemaker_protocol.error_response(exc)
                    self._answer(
                        424,
                        {
                            "__type": "ModelError",
                            "message": payload.decode(),
                            "OriginalStatusCode": status,
                            "OriginalMessage": payload.decode(),
                        },
                    )

            def _answer(self, status: int, payload):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                if status >= 400:
                    self.send_header("x-amzn-ErrorType", json.loads(data)["__type"])
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def load_event(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text())


def s3_event(bucket: str, key: str, *, created: bool, sequencer: str) -> dict:
    """An S3 notification record as S3 sends it (the key URL-encoded, '+' for a space)."""
    from urllib.parse import quote_plus

    record = load_event("s3-put.json" if created else "s3-delete.json")["Records"][0]
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["s3"]["object"].update(key=quote_plus(key, safe="/"), sequencer=sequencer)
    return record


def sqs_batch(*messages: list[dict]) -> dict:
    """An SQS event whose messages each carry one S3 notification with the given records."""
    template = load_event("sqs-s3-events.json")["Records"][0]
    records = []
    for number, s3_records in enumerate(messages):
        record = dict(template, messageId=f"message-{number}", body=json.dumps({"Records": s3_records}))
        records.append(record)
    return {"Records": records}
