"""The sample events of events/, as the sam_local tests send them to the functions."""

from __future__ import annotations

import copy
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS = REPO_ROOT / "events"
BUCKET = "visual-search-images-123456789012-0a1b2c3d4e5f"  # the bucket the sample events name


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def sqs_put_event(keys: list[str], message_prefix: str = "sam-local-test") -> dict:
    """events/sqs-s3-events.json with one SQS message per key: S3 puts, sequenced in the order given."""
    template = load_event("sqs-s3-events.json")
    messages = []
    for number, key in enumerate(keys):
        message = copy.deepcopy(template["Records"][0])
        body = json.loads(message["body"])
        body["Records"][0]["s3"]["object"]["key"] = key.replace(" ", "+")  # S3 URL-encodes keys, spaces as '+'
        body["Records"][0]["s3"]["object"]["sequencer"] = f"0066336700000000{number:02X}"
        message["body"] = json.dumps(body)
        message["messageId"] = f"{message_prefix}-{number}"
        messages.append(message)
    return {"Records": messages}
