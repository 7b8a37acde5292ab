"""S3 event notifications, delivered directly or wrapped in SQS messages, read into ObjectEvents.

S3 sends object keys URL-encoded ('+' for a space); every key here is decoded. `sequencer` orders the events of
one key: per AWS, left-pad the shorter hex string with zeros and compare lexically; a greater one is later.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import unquote_plus

logger = logging.getLogger(__name__)

# Event names whose object is now there / no longer there. Lifecycle expirations remove objects too.
_CREATED_PREFIXES = ("ObjectCreated:",)
_REMOVED_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")


@dataclass(frozen=True)
class ObjectEvent:
    """One object's change. `message_id` is the SQS message that carried it (None for a direct invocation)."""

    bucket: str
    key: str
    created: bool
    sequencer: str
    event_name: str
    message_id: str | None = None


@dataclass
class ParsedEvent:
    """The object events of one invocation, and the SQS messages that cannot be read (reported as failures)."""

    objects: list[ObjectEvent]
    unreadable_message_ids: list[str]
    from_sqs: bool


def sequencer_key(sequencer: str, width: int = 32) -> str:
    """A string that sorts like the sequencer's hex value: upper-cased and left-padded with zeros."""
    return (sequencer or "").upper().rjust(width, "0")


def is_later(sequencer: str, than: str | None) -> bool:
    """True when `sequencer` is strictly later than `than` (None or empty: nothing applied yet)."""
    if not than:
        return True
    width = max(len(sequencer or ""), len(than), 1)
    return sequencer_key(sequencer, width) > sequencer_key(than, width)


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
