"""S3 event notifications, delivered directly or wrapped in SQS messages, read into ObjectEvents.

S3 sends object keys URL-encoded ('+' for a space); every key here is decoded. How events are ordered (the
sequencer) is core/object_events.py's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import unquote_plus

from visual_search.core.object_events import ObjectEvent

logger = logging.getLogger(__name__)

# Event names whose object is now there / no longer there. Lifecycle expirations remove objects too.
_CREATED_PREFIXES = ("ObjectCreated:",)
_REMOVED_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")


@dataclass
class ParsedEvent:
    """The object events of one invocation, and the SQS messages that cannot be read (reported as failures)."""

    objects: list[ObjectEvent]
    unreadable_message_ids: list[str]
    from_sqs: bool


def parse_event(event: dict) -> ParsedEvent:
    """Reads an S3 notification or an SQS batch of them. S3's test event and other event types are skipped."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise ValueError("not an S3 or SQS event: no Records list")
    objects: list[ObjectEvent] = []
    unreadable: list[str] = []
    from_sqs = any(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    for record in records:
        if not isinstance(record, dict):
            continue
        if record.get("eventSource") == "aws:sqs":
            message_id = str(record.get("messageId", ""))
            try:
                inner = json.loads(record.get("body") or "")
                objects.extend(_s3_records(inner.get("Records", []) if isinstance(inner, dict) else [], message_id))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                logger.error("SQS message %s does not hold an S3 event: %s", message_id, exc)
                unreadable.append(message_id)
        else:
            try:
                objects.extend(_s3_records([record], None))
            except (TypeError, KeyError, AttributeError) as exc:
                logger.error("an S3 record could not be read: %s", exc)
    return ParsedEvent(objects=objects, unreadable_message_ids=unreadable, from_sqs=from_sqs)


def _s3_records(records: list, message_id: str | None) -> list[ObjectEvent]:
    events = []
    for record in records:
        name = str(record.get("eventName", ""))
        if record.get("eventSource") != "aws:s3":
            continue
        created = name.startswith(_CREATED_PREFIXES)
        if not created and not name.startswith(_REMOVED_PREFIXES):
            logger.info("skipped S3 event %s", name)
            continue
        s3 = record["s3"]
        events.append(
            ObjectEvent(
                bucket=s3["bucket"]["name"],
                # Bytes that are not UTF-8 stay visible (as lone surrogates) for the key check to refuse, rather
                # than silently becoming U+FFFD and naming another object.
                key=unquote_plus(s3["object"]["key"], errors="surrogateescape"),
                created=created,
                sequencer=str(s3["object"].get("sequencer", "")),
                event_name=name,
                message_id=message_id,
            )
        )
    return events
