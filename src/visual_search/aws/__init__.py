"""The AWS entry points: Lambda handlers for the search API and for S3-triggered indexing, and their offline twin.

Handlers are thin: `s3_events` and `http_events` translate AWS payloads, `s3_event_indexer` applies object
events idempotently, `handlers` builds the services once per container, and `local_invoke` runs the same
handlers in-process against local adapters.
"""
