"""The index function's own CloudWatch metric: how many events of an invocation failed.

Failures of an SQS batch are returned as `batchItemFailures`, which Lambda's Errors metric never counts (the
invocation succeeded); without this number a whole batch failing for an hour shows only when its messages reach
the dead-letter queue. The metric is written as one CloudWatch embedded-metric-format (EMF) line on stdout, which
Lambda's log pipeline turns into a metric: no PutMetricData call, no extra permission, no dependency.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

NAMESPACE = "VisualSearch"
FAILED_EVENTS_METRIC = "FailedIndexEvents"
DIMENSION = "FunctionName"


def failed_events_record(failed: int, function_name: str, *, timestamp_ms: int | None = None) -> dict:
    """The EMF document saying `failed` events of one invocation of `function_name` failed."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": FAILED_EVENTS_METRIC, "Unit": "Count"}],
                }
            ],
        },
        DIMENSION: function_name,
        FAILED_EVENTS_METRIC: failed,
    }


def failed_event_count(response: dict) -> int:
    """The events an index handler's response reports as failed: its batchItemFailures (SQS), else its failed
    list (a direct S3 invocation's summary)."""
    if "batchItemFailures" in response:
        return len(response["batchItemFailures"])
    return len(response.get("failed", ()))


def emit_failed_events(failed: int, function_name: str, *, stream: TextIO | None = None) -> None:
    """Writes the metric line. Printed, not logged: the JSON log format would wrap a logging record in its own
    object, and CloudWatch reads EMF only from a line that is the document itself. Zero is written too, so
    the alarm's periods have data and it returns to OK."""
    out = stream or sys.stdout
    out.write(json.dumps(failed_events_record(failed, function_name)) + "\n")
    out.flush()


def reporting_failed_events(handle: Callable[[dict], dict], event: dict, context=None) -> dict:
    """`handle(event)`, with its failed events written as the metric when running as a Lambda function (its name
    from the context, else AWS_LAMBDA_FUNCTION_NAME; elsewhere nothing is written). An invocation that raises
    counts every record of its event as failed, then raises on."""
    function_name = getattr(context, "function_name", None) or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    try:
        response = handle(event)
    except Exception:
        if function_name:
            records = event.get("Records") if isinstance(event, dict) else None
            emit_failed_events(len(records) if isinstance(records, list) else 1, function_name)
        raise
    if function_name:
        emit_failed_events(failed_event_count(response), function_name)
    return response
