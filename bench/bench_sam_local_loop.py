"""How long `make sam-local`'s indexing loop takes from a put into the local bucket to a searchable photo.

Against a running `make sam-local` (it reads var/sam-local/endpoints.json): photos of the clothing dataset that
are not in the demo catalogue are put one at a time under the images prefix, and the HTTP API (`sam local
start-api`, warm) is asked every 0.25 s for the photo's nearest neighbour until it is the photo itself; then a
burst of puts at once, timed until every one is searchable. The loop's floor is the template's batching window
(a lone message waits for it to close, as on AWS). The baseline, in the same run, is the warm IndexFunction invoked
directly through `sam local start-lambda` with the SQS event for one such photo: put -> searchable over it is the
price of the notification, the queue, the window and the poller.

    .venv/bin/python bench/bench_sam_local_loop.py [--repeats 5] [--burst 20] > artifacts/bench/sam-local-loop.json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

REPO = Path(__file__).resolve().parents[1]
DATASET = Path("/work/shared/datasets/clothing/images")
POLL_S = 0.25


def aws(service: str, endpoint: str, **config):
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**config),
    )


def nearest(api: str, photo: bytes) -> str | None:
    request = urllib.request.Request(
        f"{api}/search",
        data=json.dumps({"image": base64.b64encode(photo).decode(), "k": 1}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        results = json.loads(response.read())["results"]
    return results[0]["key"] if results else None


def until_searchable(api: str, pending: dict[str, bytes], started: float, timeout_s: float = 300) -> dict[str, float]:
    """Seconds from `started` until each key is its own photo's nearest neighbour."""
    found: dict[str, float] = {}
    while len(found) < len(pending):
        for key, photo in pending.items():
            if key not in found and nearest(api, photo) == key:
                found[key] = round(time.monotonic() - started, 2)
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"not searchable within {timeout_s} s: {sorted(set(pending) - set(found))}")
        time.sleep(POLL_S)
    return found


def sqs_event(bucket: str, key: str, number: int) -> dict:
    from urllib.parse import quote_plus

    body = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "sequencer": f"{number:016X}"}},
            }
        ]
    }
    return {
        "Records": [
            {
                "messageId": f"bench-{number}",
                "receiptHandle": "bench",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                "awsRegion": "us-east-1",
            }
        ]
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--endpoints", type=Path, default=REPO / "var" / "sam-local" / "endpoints.json")
    args = parser.parse_args(argv[1:])
    endpoints = json.loads(args.endpoints.read_text())
    api, bucket, prefix = endpoints["api"], endpoints["bucket"], endpoints["prefix"]
    s3 = aws("s3", endpoints["s3"])
    lambda_client = aws("lambda", endpoints["lambda"], read_timeout=300, retries={"max_attempts": 0})
    catalogue = set(os.listdir(REPO / "demo" / "catalogue" / "images"))
    photos = sorted(name for name in os.listdir(DATASET) if name not in catalogue)
    random.Random(23).shuffle(photos)
    picked = iter(photos)
    load_before = os.getloadavg()

    nearest(api, (DATASET / photos[0]).read_bytes())  # SearchFunction's warm container, before any timing

    # Baseline: the same function, warm, invoked directly (no queue, no window) for one photo already in the bucket.
    direct = []
    for number in range(args.repeats + 1):
        name = next(picked)
        key = f"{prefix}bench-direct-{name}"
        s3.put_object(Bucket=bucket, Key=key, Body=(DATASET / name).read_bytes())
        time.sleep(8)  # the put's own event goes through the loop first, so the invoke below finds it indexed
        started = time.monotonic()
        answer = lambda_client.invoke(FunctionName="IndexFunction", Payload=json.dumps(sqs_event(bucket, key, number)))
        answer["Payload"].read()
        if number:  # the first one warms the container
            direct.append(round(time.monotonic() - started, 2))

    singles = []
    for _ in range(args.repeats):
        name = next(picked)
        key, photo = f"{prefix}bench-loop-{name}", (DATASET / name).read_bytes()
        started = time.monotonic()
        s3.put_object(Bucket=bucket, Key=key, Body=photo)
        singles.append(until_searchable(api, {key: photo}, started)[key])

    burst = {
        f"{prefix}bench-burst-{name}": (DATASET / name).read_bytes()
        for name in [next(picked) for _ in range(args.burst)]
    }
    started = time.monotonic()
    for key, photo in burst.items():
        s3.put_object(Bucket=bucket, Key=key, Body=photo)
    burst_found = until_searchable(api, burst, started)

    baseline = statistics.median(direct)
    result = {
        "machine": machine_facts(load_before=[round(x, 2) for x in load_before], load_after=os.getloadavg()),
        "batching_window_s": json.loads((args.endpoints.parent / "poller.log").read_text().splitlines()[0])[
            "batching_window_s"
        ],
        "direct_invoke_warm_s": direct,
        "direct_invoke_warm_median_s": baseline,
        "put_to_searchable_s": singles,
        "put_to_searchable_median_s": statistics.median(singles),
        "put_to_searchable_max_s": max(singles),
        "burst": args.burst,
        "burst_all_searchable_s": max(burst_found.values()),
        "ratios_to_direct_invoke": {
            "put_to_searchable_median": round(statistics.median(singles) / baseline, 1),
            "burst_all_searchable": round(max(burst_found.values()) / baseline, 1),
        },
    }
    print(json.dumps(result, indent=2))
    # The photos leave the bucket, and through the loop the index.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}bench-"):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
