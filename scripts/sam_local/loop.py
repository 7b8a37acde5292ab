"""The indexing loop and the HTTP API of `make sam-local`, on top of the stand-ins (standins.py):

    loop.py start   `sam local start-lambda` (the Lambda Invoke API, warm containers), the event source poller
                    (event_source.py: the IndexQueue -> IndexFunction), `sam local start-api` (the HTTP API), then
                    writes endpoints.json in the state directory and waits until the queue is empty (the seeded
                    catalogue indexed), so that SearchFunction answers from the first query
    loop.py stop    stops them, SAM's first (SIGINT: SAM removes its warm containers on Ctrl+C)
    loop.py wait    waits until the queue is empty (no message visible or in flight)

Settings from the environment (defaults in brackets): SAM_LOCAL_LAMBDA_PORT [3001], SAM_LOCAL_API_PORT [3000;
"off" starts no API], SAM_LOCAL_DRAIN_TIMEOUT_S [900], SAM_LOCAL_TEMPLATE (the built template; set by
scripts/sam-local.sh), and those of standins.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import processes
from indexing_path import DEAD_LETTER_QUEUE_NAME, QUEUE_NAME, IndexingPath
from standins import BUCKET, REGION, LocalServices, aws_client

SAM = str(Path(sys.executable).parent / "sam")
SAM_PROCESSES = ("api", "lambda")
SAM_STOP_GRACE_S = 90  # SAM stops and removes each warm container before exiting


def _sam_command(subcommand: str, port: int) -> list[str]:
    template = os.environ.get("SAM_LOCAL_TEMPLATE") or str(processes.REPO / ".aws-sam" / "local" / "template.yaml")
    env_file = os.environ.get("SAM_LOCAL_ENV_FILE") or str(processes.REPO / "events" / "env.local.json")
    return [
        SAM,
        "local",
        subcommand,
        "--template",
        template,
        "--env-vars",
        env_file,
        "--skip-pull-image",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # One container per function, started on its first call and reused, as Lambda reuses a warm one.
        "--warm-containers",
        "LAZY",
    ]


def _sam_env() -> dict:
    return dict(os.environ, SAM_CLI_TELEMETRY="0")


def endpoints(services: LocalServices, lambda_port: int, api_port: int | None) -> dict:
    queues = json.loads((services.state_dir / "queues.json").read_text())
    described = {
        "s3": services.url(services.s3_port),
        "bucket": BUCKET,
        "prefix": IndexingPath.from_template().prefix,
        "region": REGION,
        "sqs": services.url(services.s3_port),
        "queue_url": queues["queue_url"],
        "dead_letter_queue_url": queues["dead_letter_queue_url"],
        "lambda": services.url(lambda_port),
        "sagemaker_runtime": services.url(services.sagemaker_port),
        "opensearch_index": services.index,
        "write_api_key_file": str(services.state_dir / "write-api-key"),
    }
    if api_port:
        described["api"] = services.url(api_port)
    return described


def start(services: LocalServices) -> None:
    lambda_port = int(os.environ.get("SAM_LOCAL_LAMBDA_PORT") or 3001)
    api_setting = os.environ.get("SAM_LOCAL_API_PORT") or "3000"
    api_port = None if api_setting == "off" else int(api_setting)
    state = services.state_dir
    # start-lambda answers 404 to GET /: any HTTP answer means it listens.
    processes.start(
        "lambda",
        _sam_command("start-lambda", lambda_port),
        state,
        f"{services.url(lambda_port)}/",
        timeout_s=120,
        any_status=True,
        env=_sam_env(),
    )
    queue_url = json.loads((state / "queues.json").read_text())["queue_url"]
    processes.start(
        "poller",
        [
            sys.executable,
            str(Path(__file__).with_name("event_source.py")),
            "--sqs",
            services.url(services.s3_port),
            "--queue-url",
            queue_url,
            "--lambda",
            services.url(lambda_port),
        ],
        state,
        None,
        timeout_s=0,
    )
    if api_port:
        processes.start(
            "api",
            _sam_command("start-api", api_port),
            state,
            f"{services.url(api_port)}/",
            timeout_s=120,
            any_status=True,
            env=_sam_env(),
        )
    written = state / "endpoints.json"
    written.write_text(json.dumps(endpoints(services, lambda_port, api_port), indent=2) + "\n")
    print(f"sam-local: endpoints in {written}", file=sys.stderr)
    wait_until_drained(services)


def queue_depth(services: LocalServices) -> tuple[int, int]:
    """(messages waiting or in flight on the IndexQueue, messages in the dead-letter queue)."""
    sqs = aws_client("sqs", services)
    counts = []
    for name in (QUEUE_NAME, DEAD_LETTER_QUEUE_NAME):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        counts.append(sum(int(value) for value in attributes.values()))
    return counts[0], counts[1]


def wait_until_drained(services: LocalServices) -> None:
    timeout_s = float(os.environ.get("SAM_LOCAL_DRAIN_TIMEOUT_S") or 900)
    started = time.monotonic()
    last_report = 0.0
    while True:
        queued, dead = queue_depth(services)
        if not queued:
            print(
                f"sam-local: the queue is empty ({time.monotonic() - started:.0f} s); {dead} in the dead-letter queue",
                file=sys.stderr,
            )
            return
        if not processes.running_pid(services.state_dir / "poller.pid"):
            raise SystemExit(f"the poller stopped; see {services.state_dir / 'poller.log'}")
        if time.monotonic() - started > timeout_s:
            raise SystemExit(
                f"{queued} messages still queued after {timeout_s:.0f} s; see {services.state_dir / 'poller.log'}"
            )
        if time.monotonic() - last_report >= 15:
            print(f"sam-local: indexing, {queued} messages queued or in flight", file=sys.stderr)
            last_report = time.monotonic()
        time.sleep(1)


def stop(services: LocalServices) -> None:
    # The poller first: nothing is handed to a function that is being stopped.
    processes.stop("poller", services.state_dir)
    for name in SAM_PROCESSES:
        processes.stop(name, services.state_dir, first_signal=signal.SIGINT, grace_s=SAM_STOP_GRACE_S)
    (services.state_dir / "endpoints.json").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    commands = {"start": start, "stop": stop, "wait": wait_until_drained}
    if len(argv) != 2 or argv[1] not in commands:
        print(f"usage: {argv[0]} start|stop|wait", file=sys.stderr)
        return 2
    commands[argv[1]](LocalServices.from_env())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
