"""A change to one object of a bucket, and the order of such changes: what the event indexer applies, whichever
transport delivered it (aws/s3_events.py reads S3 and SQS events into these).

`sequencer` orders the events of one key: per AWS, left-pad the shorter hex string with zeros and compare
lexically; a greater one is later.
"""

from __future__ import annotations

from dataclasses import dataclass

THUMBNAIL_PREFIX = "thumbnails/"
SHARED_UPLOADS_PREFIX = "shared-uploads/"  # shoppers' shared query photos (the search function's; not catalogue)
# Objects the stack itself writes into the images bucket: never catalogue images, whatever ImagesPrefix says.
STACK_PREFIXES = (THUMBNAIL_PREFIX, SHARED_UPLOADS_PREFIX)
THUMBNAILS_ATTRIBUTE = "thumbnails"  # set on a record whose thumbnails are in the bucket (stores/s3_thumbnails.py)


@dataclass(frozen=True)
class ObjectEvent:
    """One object's change. `message_id` is the SQS message that carried it (None for a direct invocation)."""

    bucket: str
    key: str
    created: bool
    sequencer: str
    event_name: str
    message_id: str | None = None


def sequencer_key(sequencer: str, width: int = 32) -> str:
    """A string that sorts like the sequencer's hex value: upper-cased and left-padded with zeros."""
    return (sequencer or "").upper().rjust(width, "0")


def is_later(sequencer: str, than: str | None) -> bool:
    """True when `sequencer` is strictly later than `than` (None or empty: nothing applied yet)."""
    if not than:
        return True
    width = max(len(sequencer or ""), len(than), 1)
    return sequencer_key(sequencer, width) > sequencer_key(than, width)


@dataclass(frozen=True)
class EventOutcome:
    """What became of one event: indexed, deleted, kept (object exists again), stale, duplicate, ignored,
    skipped (a key no index may hold, e.g. a control character in it; reported) or failed (with a reason).
    Only "failed" asks for redelivery."""

    event: ObjectEvent
    status: str
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def is_stack_object(key: str) -> bool:
    """True for a thumbnail or a shared upload: objects the S3 event path must never index."""
    return key.startswith(STACK_PREFIXES)
