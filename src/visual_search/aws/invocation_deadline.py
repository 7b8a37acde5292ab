"""The search function's one deadline, derived from what is left of the Lambda invocation (core/deadline.py says
how the adapters honour it)."""

from __future__ import annotations

# Kept back from the invocation's remaining time: turning a backend failure into a JSON 503 and returning it, and
# Lambda's own bookkeeping, happen after the last backend call and must not be cut off by the function timeout.
ANSWER_RESERVE_S = 1.5


def seconds_left(context, reserve_s: float = ANSWER_RESERVE_S) -> float | None:
    """Seconds the backend calls of this invocation may take: the invocation's remaining time
    (context.get_remaining_time_in_millis()) less `reserve_s`, at least 0; None without a Lambda context."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return None
    return max(0.0, remaining_ms() / 1000.0 - reserve_s)
