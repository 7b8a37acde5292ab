"""One deadline for a whole request, passed down to every backend call it makes.

A Lambda function has a hard end (its timeout); a request that reaches it is killed and the shopper gets API
Gateway's plain-text error instead of a JSON 503. Separate budgets per call (the URL fetch's 5 s, the endpoint's
10 s, OpenSearch's 10 s x 4 attempts) can add up past it. Instead the entry point sets one deadline, derived
from the invocation's remaining time, and each adapter asks `remaining_s()` before a call or a retry: it caps
the call's own timeout by it, and stops retrying when the next attempt could not end in time.

The deadline lives in a context variable (set with `deadline_after`), so the ports need no new parameter; it
covers the thread that set it (a search runs on one thread). With no deadline set, everything behaves as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from visual_search.core.errors import BackendUnavailableError

_deadline: ContextVar[float | None] = ContextVar("visual_search_deadline", default=None)  # a time.monotonic() instant


class DeadlineExceededError(BackendUnavailableError):
    """The request's deadline came before a backend could answer: a 503 (try again), never a killed function."""

    code = "backend_unavailable"


@contextmanager
def deadline_after(seconds: float | None) -> Iterator[None]:
    """Within the block, calls must end within `seconds` from now (None: no deadline). A deadline already set
    (an outer one) is kept if it is sooner."""
    if seconds is None:
        yield
        return
    wanted = time.monotonic() + max(0.0, seconds)
    outer = _deadline.get()
    token = _deadline.set(wanted if outer is None else min(outer, wanted))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining_s() -> float | None:
    """Seconds left before the current deadline (never below 0), or None when there is none."""
    deadline = _deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def capped(timeout_s: float) -> float:
    """`timeout_s`, shortened to what is left of the deadline."""
    left = remaining_s()
    return timeout_s if left is None else min(timeout_s, left)


def fits(seconds: float) -> bool:
    """Whether something taking up to `seconds` would still end before the deadline (always, without one)."""
    left = remaining_s()
    return left is None or seconds <= left


def check(what: str, needed_s: float = 0.0) -> None:
    """Raises DeadlineExceededError naming `what` when less than `needed_s` (or nothing) is left."""
    left = remaining_s()
    if left is not None and (left <= 0 or left < needed_s):
        raise DeadlineExceededError(f"no time left to {what} within the request's deadline ({left:.1f} s left)")
