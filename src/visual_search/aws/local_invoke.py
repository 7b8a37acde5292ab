"""The offline twin of `sam local invoke`: run a Lambda handler in-process on an event, against local adapters
(the embedded index, the in-process model, a local folder standing in for the bucket) or whatever the settings
name (an OpenSearch URL, the SageMaker endpoint, an s3:// store)."""

from __future__ import annotations

import os

from visual_search.aws.api_key_parameter import with_parameter_keys
from visual_search.aws.handlers import handle_index_event
from visual_search.aws.http_events import handle_http_event
from visual_search.bootstrap import build_image_store
from visual_search.bootstrap.aws_runtime import (
    build_event_indexer_runtime,
    build_refit_runtime,
    build_search_function_runtime,
)
from visual_search.core.settings import Settings


def invoke_local(kind: str, event: dict, settings: Settings) -> dict:
    """The handler's response to `event`. kind is "search", "index" or "refit" (live learning's scheduled refit,
    whose event carries nothing it reads). `settings.image_store` is the folder
    (or s3:// URL) that plays the bucket; every bucket named in an event maps to it. Defaults to the
    current directory."""
    store = build_image_store(settings.image_store or os.getcwd())
    if kind == "search":
        runtime = build_search_function_runtime(with_parameter_keys(settings), store=store)
        try:
            return handle_http_event(event, runtime.apis, runtime.keys)
        finally:
            runtime.close()
    if kind == "index":
        indexer = build_event_indexer_runtime(settings, store_for_bucket=lambda _bucket: store)
        try:
            response, _failed = handle_index_event(event, indexer)
            return response
        finally:
            indexer.close()
    if kind == "refit":
        refit = build_refit_runtime(settings)
        try:
            return refit.run()
        finally:
            refit.close()
    raise ValueError(f"unknown handler {kind!r}: use search, index or refit")
