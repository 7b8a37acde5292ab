"""The Lambda entry points, thin: each gets its whole runtime from bootstrap/aws_runtime.py on the first
invocation of a container (not at import time, so a cold start that fails reports its error per request) and
reuses it for the invocations after it.

Configuration comes from VISUAL_SEARCH_* environment variables (see settings.py); SEARCH_SETTINGS and
INDEX_SETTINGS name the ones each function reads, and the template test checks that template.yaml sets them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

from visual_search.api.results import error_result
from visual_search.aws.api_key_parameter import with_parameter_keys
from visual_search.aws.http_events import handle_http_event, json_response
from visual_search.aws.index_metrics import reporting_failed_events
from visual_search.aws.invocation_deadline import seconds_left
from visual_search.aws.s3_events import parse_event
from visual_search.bootstrap.aws_runtime import (
    INDEX_BATCH_SIZE,
    EventIndexerRuntime,
    RefitRuntime,
    SearchFunctionRuntime,
    build_event_indexer_runtime,
    build_refit_runtime,
    build_search_function_runtime,
)
from visual_search.core.deadline import deadline_after
from visual_search.core.errors import NotFoundError, VisualSearchError, error_body
from visual_search.core.keys import printable
from visual_search.core.lazy import Lazy
from visual_search.core.object_events import EventOutcome
from visual_search.core.settings import Settings

logger = logging.getLogger(__name__)

SEARCH_SETTINGS = (
    "index",
    "embedder",
    "sagemaker_endpoint",
    "sagemaker_budget_s",
    "image_store",
    "max_upload_bytes",
    "url_allowlist",
    "url_timeout_s",
    "presigned_url_expiry_s",
    "read_api_key_parameter",
    "write_api_key_parameter",
    "adapt_live_every",
    "adapt_live_client_salt",
)
INDEX_SETTINGS = ("index", "embedder", "sagemaker_endpoint", "sagemaker_budget_s", "image_store", "catalogue_manifest")
REFIT_SETTINGS = ("index", "adapt_live_every")
__all__ = ["INDEX_BATCH_SIZE", "index_handler", "refit_handler", "search_handler"]


class IndexBatchFailedError(VisualSearchError):
    """Some objects of a direct (non-SQS) S3 invocation failed; raising makes Lambda retry the event and then
    send it to the function's on-failure destination."""

    code = "index_batch_failed"
    http_status = 500


class RefitFailedError(VisualSearchError):
    """The scheduled refit failed (recorded in the shared state, the sums kept): raised so that Lambda counts an
    error (RefitFunctionErrorsAlarm). Its retries find nothing due: the next window refits again."""

    code = "refit_failed"
    http_status = 500


def search_runtime_from_env() -> SearchFunctionRuntime:
    # Keys not set themselves are read from their SSM parameters: unreadable, the function refuses to start (503).
    runtime = build_search_function_runtime(with_parameter_keys(Settings.from_env()))
    flush_on_shutdown(runtime)
    return runtime


def flush_on_shutdown(runtime: SearchFunctionRuntime) -> None:
    """On Lambda (AWS_LAMBDA_FUNCTION_NAME set), send live learning's buffered searches when the instance is shut
    down. Lambda signals the runtime (SIGTERM) only when an extension is registered (Lambda Insights, ADOT...);
    without one there is no hook, and the buffer (at most adapt_live_flush_every searches) is simply lost."""
    if runtime.learner is None or "AWS_LAMBDA_FUNCTION_NAME" not in os.environ:
        return
    learner, previous = runtime.learner, signal.getsignal(signal.SIGTERM)

    def flush_then_go_on(signum, frame) -> None:
        learner.flush()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            sys.exit(0)

    try:
        signal.signal(signal.SIGTERM, flush_then_go_on)
    except ValueError:  # not the main thread (Lambda's runtime calls handlers on it): no hook, as without one
        logger.info("live learning's buffer will not be flushed at shutdown: not on the main thread")


def event_indexer_from_env() -> EventIndexerRuntime:
    return build_event_indexer_runtime(Settings.from_env())


def refit_runtime_from_env() -> RefitRuntime:
    return build_refit_runtime(Settings.from_env())


# One runtime per container, built by the first invocation (not at import time, so a cold start that fails
# reports its error per request and is retried by the next one).
_search_runtime = Lazy(search_runtime_from_env)
_event_indexer = Lazy(event_indexer_from_env)
_refit_runtime = Lazy(refit_runtime_from_env)


def search_handler(event: dict, context=None) -> dict:
    """SearchFunction: HTTP API v2 event in, proxy response out. A cold start that fails (no index yet, a
    backend down) answers each request with a JSON error and is retried on the next one. Every backend call
    (the URL fetch, the endpoint, OpenSearch and their retries) ends before one deadline taken from the
    invocation's remaining time, so a slow backend is a JSON 503, never a function killed by its timeout."""
    with deadline_after(seconds_left(context)):
        return _search_response(event)


def _search_response(event: dict) -> dict:
    try:
        runtime = _search_runtime.get()
    except NotFoundError:
        logger.warning("the search index does not exist yet", exc_info=True)
        return json_response(
            503,
            error_body(
                "index_not_ready", "the catalogue is empty: upload images to the bucket and they will be indexed"
            ),
        )
    except Exception as exc:  # noqa: BLE001 - the API boundary: every failure becomes a JSON error
        return json_response(*error_result(exc))
    return handle_http_event(event, runtime.apis, runtime.keys)


def index_handler(event: dict, context=None) -> dict:
    """IndexFunction: S3 notifications via SQS (partial batch failures) or directly (raises on failure). A
    function that cannot start (a missing setting, a backend down) logs why and fails every item of the batch.
    The number of failed events is written as a metric (aws/index_metrics.py): Lambda's Errors never sees them."""
    return reporting_failed_events(_index_response, event, context)


def _index_response(event: dict) -> dict:
    try:
        runtime = _event_indexer.get()
    except Exception as exc:  # noqa: BLE001 - logged and reported per item; SQS redelivers, then the DLQ
        _status, body = error_result(exc)
        logger.error(json.dumps({"status": "failed", "batch": "whole", **body["error"]}))
        records = event.get("Records") if isinstance(event, dict) else None
        message_ids = [
            r["messageId"] for r in records or () if isinstance(r, dict) and r.get("eventSource") == "aws:sqs"
        ]
        if message_ids:
            return batch_item_failures(message_ids)
        raise IndexBatchFailedError(body["error"]["message"]) from None
    response, failed = handle_index_event(event, runtime)
    if failed and "batchItemFailures" not in response:
        raise IndexBatchFailedError(f"some objects were not indexed: {json.dumps(response['failed'])}")
    return response


def handle_index_event(event: dict, runtime: EventIndexerRuntime) -> tuple[dict, bool]:
    """(the handler's response, whether anything failed). For SQS the response is the partial batch failure
    report; for a direct S3 invocation it summarises the outcomes.

    Why not Powertools' BatchProcessor: it hands records to a handler one at a time, while the event indexer
    plans a batch as a whole (a key's stale and duplicate events within the batch dropped by sequencer, each
    record read once, every image embedded in one endpoint request); the report it would build is the few lines
    of batch_item_failures."""
    parsed = parse_event(event)
    try:
        outcomes = runtime.apply(parsed.objects)
    except VisualSearchError as exc:
        # The index or the bucket is unreachable: nothing was applied reliably, so every message is redelivered.
        logger.error("indexing failed for the whole batch: %s", exc.message)
        outcomes = [EventOutcome(obj, "failed", exc.message) for obj in parsed.objects]
    for outcome in outcomes:
        log = logger.error if outcome.failed or outcome.status == "skipped" else logger.info
        log(
            json.dumps(
                {
                    "key": outcome.event.key,
                    "event": outcome.event.event_name,
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "sequencer": outcome.event.sequencer,
                }
            )
        )
    failed = [outcome for outcome in outcomes if outcome.failed]
    if parsed.from_sqs:
        failed_ids = list(dict.fromkeys(parsed.unreadable_message_ids + [str(o.event.message_id) for o in failed]))
        return batch_item_failures(failed_ids), bool(failed_ids)
    summary: dict[str, list] = {
        status: [o.event.key for o in outcomes if o.status == status]
        for status in ("indexed", "deleted", "kept", "stale", "duplicate", "ignored")
    }
    summary["skipped"] = [
        {"key": printable(o.event.key), "reason": o.reason} for o in outcomes if o.status == "skipped"
    ]
    summary["failed"] = [{"key": o.event.key, "reason": o.reason} for o in failed]
    return summary, bool(failed)


def batch_item_failures(message_ids: list[str]) -> dict:
    """SQS's partial batch response: the messages to redeliver (ReportBatchItemFailures in template.yaml)."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in message_ids]}


def refit_handler(event: dict, context=None) -> dict:
    """RefitFunction, on its schedule (EventBridge): refit live learning's query-domain centre when the shared
    window is full or an operator asked (POST /adaptation refit), outside every search's request path. A refit
    that fails is recorded in the shared state (GET /adaptation shows it), logged and raised (RefitFailedError);
    the sums are kept."""
    with deadline_after(seconds_left(context)):
        try:
            runtime = _refit_runtime.get()
        except NotFoundError:  # a new stack before its first image: nothing to centre yet, and no alarm for it
            logger.info(json.dumps({"refit": False, "reason": "the index does not exist yet"}))
            return {"enabled": True, "refitted": False, "index_ready": False}
        outcome = runtime.run()
    if outcome.get("failed"):
        logger.error(json.dumps({"refit": "failed", "reason": outcome["last_error"]}))
        raise RefitFailedError(f"the query-domain centre refit failed: {outcome['last_error']}")
    logger.info(json.dumps({"refit": outcome.get("refitted", False), "refits": outcome.get("refits")}))
    return outcome


def reset_cached_services() -> None:
    """Forget the runtimes built from the environment, so the next invocation rebuilds them."""
    _search_runtime.reset()
    _event_indexer.reset()
    _refit_runtime.reset()
