"""The twin of Lambda's SQS event source mapping, for `make sam-local`: long-polls the local IndexQueue (moto) and
hands each batch to IndexFunction in the Lambda runtime through `sam local start-lambda` (the Lambda Invoke API).

It behaves as AWS documents the mapping, with the template's values (indexing_path.py):
- a batch is up to BatchSize messages, gathered for at most MaximumBatchingWindowInSeconds after the first;
- the event is the SQS event Lambda sends (messageId, receiptHandle, body, attributes with ApproximateReceiveCount,
  eventSource aws:sqs, eventSourceARN, ...);
- with ReportBatchItemFailures, only the messages the response does not list in `batchItemFailures` are deleted;
  an empty or null list, or an empty or null response, is a complete success; a response that is not a JSON object,
  or an itemIdentifier that is empty or names no message of the batch, fails the whole batch, as does a function
  error (the handler raised, or timed out). Without ReportBatchItemFailures any success deletes the whole batch;
- a message that is not deleted becomes visible again after the queue's visibility timeout and is received again;
  the queue's redrive policy (moto implements it) moves it to the dead-letter queue once it has been received
  maxReceiveCount times.
One batch is in flight at a time (the template's MaximumConcurrency is a ceiling, not a target; locally the
function, the SageMaker stand-in and OpenSearch share this machine). Each batch is logged as one JSON line.

    python scripts/sam_local/event_source.py --sqs URL --queue-url URL --lambda URL
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from dataclasses import dataclass, field

from indexing_path import REGION, IndexingPath, queue_arn

MAX_RECEIVE = 10  # SQS's own limit per ReceiveMessage
LONG_POLL_S = 20  # SQS's longest wait, what the mapping uses


@dataclass
class BatchResult:
    received: int
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    whole_batch_failed: str | None = None  # why, when it did


def lambda_event(messages: list[dict], source_arn: str) -> dict:
    """The event Lambda builds from received SQS messages."""
    return {"Records": [_record(message, source_arn) for message in messages]}


def _record(message: dict, source_arn: str) -> dict:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn,
        "awsRegion": REGION,
    }


def _message_attribute(value: dict) -> dict:
    converted = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return converted


def failed_message_ids(
    payload: bytes, message_ids: list[str], reports_item_failures: bool
) -> tuple[list[str], str | None]:
    """The messages to leave on the queue, given the function's successful response (AWS's rules, above), and why
    the whole batch failed when it did."""
    if not reports_item_failures:
        return [], None
    try:
        response = json.loads(payload or b"null")
    except ValueError:
        return list(message_ids), "the response is not JSON"
    if response is None:
        return [], None
    if not isinstance(response, dict):
        return list(message_ids), "the response is not a JSON object"
    failures = response.get("batchItemFailures")
    if not failures:
        return [], None
    if not isinstance(failures, list):
        return list(message_ids), "batchItemFailures is not a list"
    failed = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            return list(message_ids), f"itemIdentifier {identifier!r} names no message of the batch"
        failed.append(identifier)
    return failed, None


class EventSourceMapping:
    def __init__(self, path: IndexingPath, sqs, lambda_client, queue_url: str, source_arn: str):
        self.path = path
        self.sqs = sqs
        self.lambda_client = lambda_client
        self.queue_url = queue_url
        self.source_arn = source_arn

    def receive_batch(self) -> list[dict]:
        """Long-polls until a message arrives, then gathers up to BatchSize within the batching window."""
        batch = self._receive(LONG_POLL_S, self.path.batch_size)
        if not batch:
            return []
        window_ends = time.monotonic() + self.path.batching_window_s
        while len(batch) < self.path.batch_size:
            remaining = window_ends - time.monotonic()
            if remaining <= 0:
                break
            batch += self._receive(max(1, min(LONG_POLL_S, round(remaining))), self.path.batch_size - len(batch))
        return batch

    def _receive(self, wait_s: int, wanted: int) -> list[dict]:
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(MAX_RECEIVE, wanted),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def deliver(self, messages: list[dict]) -> BatchResult:
        """Invokes the function with the batch and deletes the messages it handled."""
        result = BatchResult(received=len(messages))
        message_ids = [message["MessageId"] for message in messages]
        try:
            answer = self.lambda_client.invoke(
                FunctionName=self.path.function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(lambda_event(messages, self.source_arn)).encode(),
            )
            payload = answer["Payload"].read()
        except Exception as exc:  # noqa: BLE001 - the invoke failed: as on AWS, the whole batch is retried
            result.whole_batch_failed = f"invoke failed: {exc}"
            result.failed = message_ids
            return result
        if answer.get("FunctionError"):
            result.whole_batch_failed = f"function error: {payload[:500].decode(errors='replace')}"
            result.failed = message_ids
            return result
        result.failed, result.whole_batch_failed = failed_message_ids(
            payload, message_ids, self.path.reports_batch_item_failures
        )
        succeeded = [message for message in messages if message["MessageId"] not in result.failed]
        for start in range(0, len(succeeded), MAX_RECEIVE):
            chunk = succeeded[start : start + MAX_RECEIVE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]}
                    for number, message in enumerate(chunk)
                ],
            )
        result.deleted = [message["MessageId"] for message in succeeded]
        return result

    def run(self) -> None:
        while True:
            try:
                messages = self.receive_batch()
            except Exception as exc:  # noqa: BLE001 - the queue's server is restarting or gone: try again
                print(json.dumps({"error": f"receive failed: {exc}"}), flush=True)
                time.sleep(2)
                continue
            if not messages:
                continue
            started = time.monotonic()
            result = self.deliver(messages)
            receive_counts = [int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)) for m in messages]
            print(
                json.dumps(
                    {
                        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "received": result.received,
                        "deleted": len(result.deleted),
                        "failed": result.failed,
                        "whole_batch_failed": result.whole_batch_failed,
                        "max_receive_count_seen": max(receive_counts, default=0),
                        "seconds": round(time.monotonic() - started, 2),
                    }
                ),
                flush=True,
            )


def clients(sqs_url: str, lambda_url: str, invoke_timeout_s: float):
    import boto3
    from botocore.config import Config

    credentials = {"region_name": REGION, "aws_access_key_id": "local", "aws_secret_access_key": "local"}
    sqs = boto3.client("sqs", endpoint_url=sqs_url, config=Config(read_timeout=LONG_POLL_S + 10), **credentials)  # type: ignore[call-overload]
    # No client retries: the mapping's retry is the redelivery. The read timeout covers a cold start and the
    # function's own timeout.
    invoke_config = Config(read_timeout=invoke_timeout_s, connect_timeout=5, retries={"max_attempts": 0})
    invoke = boto3.client("lambda", endpoint_url=lambda_url, config=invoke_config, **credentials)  # type: ignore[call-overload]
    return sqs, invoke


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqs", required=True, help="the SQS endpoint (moto)")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--lambda", dest="lambda_url", required=True, help="sam local start-lambda's endpoint")
    args = parser.parse_args(argv[1:])
    path = IndexingPath.from_template()
    sqs, lambda_client = clients(args.sqs, args.lambda_url, invoke_timeout_s=path.function_timeout_s + 120)
    queue_name = args.queue_url.rstrip("/").rsplit("/", 1)[-1]
    print(json.dumps({"polling": args.queue_url, "invoking": args.lambda_url, **path.__dict__}), flush=True)
    EventSourceMapping(path, sqs, lambda_client, args.queue_url, queue_arn(queue_name)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
