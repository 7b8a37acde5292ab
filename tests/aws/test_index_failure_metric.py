"""The index function writes how many events of each invocation failed as a CloudWatch embedded metric: SQS
failures are returned as batchItemFailures, which Lambda's Errors never counts, and the alarm on this metric
(template.yaml, IndexFailedItemsAlarm) is what notices a batch failing before the dead-letter queue does."""

from __future__ import annotations

import json
from types import SimpleNamespace

from aws_fixtures import BUCKET, s3_event, sqs_batch

from visual_search.aws import handlers
from visual_search.aws.index_metrics import FAILED_EVENTS_METRIC, NAMESPACE

FUNCTION = SimpleNamespace(function_name="visual-search-index")


def metric_lines(text: str) -> list[dict]:
    documents = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [document for document in documents if "_aws" in document]


def only_metric(text: str) -> dict:
    (document,) = metric_lines(text)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE and directive["Dimensions"] == [["FunctionName"]]
    assert directive["Metrics"] == [{"Name": FAILED_EVENTS_METRIC, "Unit": "Count"}]
    assert document["FunctionName"] == "visual-search-index" and document["_aws"]["Timestamp"] > 0
    return document


def test_a_batch_with_one_broken_image_counts_one_failed_event(function_environment, bucket, demo_photos, capsys):
    bucket.put_object(Bucket=BUCKET, Key="good.jpg", Body=demo_photos[0].read_bytes())
    bucket.put_object(Bucket=BUCKET, Key="broken.jpg", Body=b"not a jpeg at all")
    event = sqs_batch(
        [s3_event(BUCKET, "good.jpg", created=True, sequencer="01")],
        [s3_event(BUCKET, "broken.jpg", created=True, sequencer="02")],
    )
    response = handlers.index_handler(event, FUNCTION)
    assert len(response["batchItemFailures"]) == 1
    assert only_metric(capsys.readouterr().out)[FAILED_EVENTS_METRIC] == 1


def test_a_clean_batch_writes_zero_so_the_alarm_returns_to_ok(function_environment, bucket, demo_photos, capsys):
    bucket.put_object(Bucket=BUCKET, Key="good.jpg", Body=demo_photos[0].read_bytes())
    response = handlers.index_handler(sqs_batch([s3_event(BUCKET, "good.jpg", created=True, sequencer="01")]), FUNCTION)
    assert response == {"batchItemFailures": []}
    assert only_metric(capsys.readouterr().out)[FAILED_EVENTS_METRIC] == 0


def test_a_function_that_cannot_start_counts_the_whole_batch(function_environment, monkeypatch, capsys):
    monkeypatch.delenv("VISUAL_SEARCH_SAGEMAKER_ENDPOINT")
    handlers.reset_cached_services()
    event = sqs_batch(*[[s3_event(BUCKET, f"{n}.jpg", created=True, sequencer=f"0{n}")] for n in range(3)])
    response = handlers.index_handler(event, FUNCTION)
    assert len(response["batchItemFailures"]) == 3
    assert only_metric(capsys.readouterr().out)[FAILED_EVENTS_METRIC] == 3


def test_outside_lambda_no_metric_is_written(function_environment, bucket, demo_photos, monkeypatch, capsys):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    bucket.put_object(Bucket=BUCKET, Key="good.jpg", Body=demo_photos[0].read_bytes())
    handlers.index_handler(sqs_batch([s3_event(BUCKET, "good.jpg", created=True, sequencer="01")]), None)
    assert metric_lines(capsys.readouterr().out) == []
