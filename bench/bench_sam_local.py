"""How long the AWS path takes in the local Lambda runtime (`sam local`, Docker), against scripts/sam-local.sh's
stand-ins (moto S3, the SageMaker route of `visual-search serve`, the OpenSearch node on 127.0.0.1:9200).

Measures, in one run: the base-image build (only when the image is our local stand-in), `sam build` cold and
cached, `sam local invoke SearchFunction` with events/search-upload.json (the first after the base image was
built, then repeats: SAM starts a new container per invoke), a warm request through `sam local start-api
--warm-containers LAZY`, and the handler's own time inside the runtime (its REPORT line). The baseline is the
same search handler called in this process, warm, against the same stand-ins; ratios are against it.
Needs root, Docker and the OpenSearch node (scripts/sam-local.sh engine; scripts/opensearch.sh start).

    .venv/bin/python bench/bench_sam_local.py [--repeats 5] [--skip-image-build]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

REPO = Path(__file__).resolve().parents[1]
SAM_LOCAL = REPO / "scripts" / "sam-local.sh"
EVENTS = REPO / "events"
REPORT_DURATION = re.compile(r"^REPORT RequestId: \S+\s+Init Duration: [\d.]+ ms\s+Duration: ([\d.]+) ms", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed(env: dict, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    done = subprocess.run([str(SAM_LOCAL), *args], env=env, capture_output=True, text=True, cwd=REPO, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"scripts/sam-local.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started, done


def invoke(env: dict, function: str, event: str) -> dict:
    seconds, done = timed(env, "invoke", function, str(EVENTS / event))
    response = json.loads(done.stdout.strip().splitlines()[-1])
    report = REPORT_DURATION.search(done.stderr)
    return {
        "wall_s": round(seconds, 2),
        "handler_ms": float(report.group(1)) if report else None,
        "status": response.get("statusCode"),
    }


def in_process_search_ms(env_file: Path, repeats: int) -> tuple[float, float]:
    """(first call, median warm call) of the search handler in this process, with the functions' settings."""
    os.environ.update(json.loads(env_file.read_text())["SearchFunction"])
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    from visual_search.aws.handlers import search_handler

    event = json.loads((EVENTS / "search-upload.json").read_text())
    durations = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        assert search_handler(event)["statusCode"] == 200
        durations.append((time.perf_counter() - started) * 1000)
    return durations[0], statistics.median(durations[1:])


def start_api_ms(env: dict, repeats: int) -> tuple[float, float]:
    """(first request, median warm request) of POST /search through `sam local start-api`, warm containers."""
    port = free_port()
    process = subprocess.Popen(
        [str(SAM_LOCAL), "start-api", "--port", str(port), "--warm-containers", "LAZY"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # JSON, as the web UI sends it: `sam local start-api` cannot pass a raw binary body (a UnicodeDecodeError, 502).
    query = json.dumps({"image": json.loads((EVENTS / "search-upload.json").read_text())["body"]}).encode()
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("sam local start-api did not start") from None
                time.sleep(0.5)
        durations = []
        for _ in range(repeats + 1):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/search",
                data=query,
                headers={"content-type": "application/json"},
                method="POST",
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=300) as response:
                assert response.status == 200
            durations.append((time.perf_counter() - started) * 1000)
        return durations[0], statistics.median(durations[1:])
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-image-build", action="store_true", help="keep the base image as it is")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-sam-local-"))
    index_name = f"sam-local-bench-{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        SAM_LOCAL_STATE_DIR=str(work / "state"),
        SAM_LOCAL_ENV_FILE=str(work / "env.json"),
        SAM_LOCAL_BUILD_DIR=str(work / "build"),
        SAM_LOCAL_S3_PORT=str(free_port()),
        SAM_LOCAL_SAGEMAKER_PORT=str(free_port()),
        SAM_LOCAL_INDEX=f"opensearch://127.0.0.1:9200/{index_name}",
    )
    result = {"machine": machine_facts()}
    try:
        standin = subprocess.run(
            [
                "docker",
                "image",
                "inspect",
                "-f",
                '{{ index .Config.Labels "org.visual-search.lambda-base-standin" }}',
                "public.ecr.aws/lambda/python:3.12-x86_64",
            ],
            capture_output=True,
            text=True,
        )
        if not args.skip_image_build and standin.stdout.strip() == "1":
            started = time.monotonic()
            subprocess.run(
                [str(REPO / "scripts" / "sam_local" / "build-base-image.sh"), "--force"],
                check=True,
                capture_output=True,
                cwd=REPO,
            )
            result["base_image_build_s"] = round(time.monotonic() - started, 1)
        # A cold build: its own build and cache directories (pip keeps its wheel cache, as on a laptop).
        cold_env = dict(env, SAM_LOCAL_BUILD_DIR=str(work / "cold-build"), SAM_LOCAL_CACHE_DIR=str(work / "cold-cache"))
        result["sam_build_cold_s"] = round(timed(cold_env, "build")[0], 1)
        result["sam_build_cached_s"] = round(timed(env, "build")[0], 1)
        result["standins_start_s"] = round(timed(env, "standins")[0], 1)
        indexed = invoke(env, "IndexFunction", "sqs-s3-events.json")
        result["index_invoke_2_images"] = indexed
        invokes = [invoke(env, "SearchFunction", "search-upload.json") for _ in range(args.repeats + 1)]
        result["search_invoke_first"] = invokes[0]
        result["search_invoke_repeat_median_wall_s"] = statistics.median(i["wall_s"] for i in invokes[1:])
        result["search_invoke_repeat_median_handler_ms"] = statistics.median(i["handler_ms"] for i in invokes[1:])
        first_api, warm_api = start_api_ms(env, args.repeats)
        result["start_api_first_request_ms"] = round(first_api)
        result["start_api_warm_request_median_ms"] = round(warm_api)
        first_local, warm_local = in_process_search_ms(work / "env.json", args.repeats)
        result["baseline_in_process_handler_first_ms"] = round(first_local)
        result["baseline_in_process_handler_warm_ms"] = round(warm_local, 1)
        result["ratios_vs_in_process_warm"] = {
            "sam_local_invoke_wall": round(result["search_invoke_repeat_median_wall_s"] * 1000 / warm_local, 1),
            "handler_report_duration": round(result["search_invoke_repeat_median_handler_ms"] / warm_local, 1),
            "start_api_warm_request": round(warm_api / warm_local, 1),
        }
    except BaseException as exc:
        result["error"] = repr(exc)[:2000]  # the figures measured so far are still printed
        raise
    finally:
        print(json.dumps(result, indent=2), flush=True)
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "sam_local" / "standins.py"), "stop"], env=env, capture_output=True
        )
        subprocess.run([str(SAM_LOCAL), "prune"], env=env, capture_output=True)
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:9200/{index_name}", method="DELETE"), timeout=30
            ).close()
        except OSError:
            pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
