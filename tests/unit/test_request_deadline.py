"""core/deadline.py: one deadline per request, the sooner of nested ones kept, none outside a block."""

from __future__ import annotations

import pytest

from visual_search.core import deadline
from visual_search.core.errors import BackendUnavailableError


def test_without_a_deadline_every_call_keeps_its_own_timeout():
    assert deadline.remaining_s() is None
    assert deadline.capped(7.0) == 7.0 and deadline.fits(1e9)
    deadline.check("anything")


def test_a_deadline_caps_timeouts_and_refuses_what_cannot_fit():
    with deadline.deadline_after(2.0):
        assert 1.9 < deadline.remaining_s() <= 2.0
        assert deadline.capped(10.0) <= 2.0 and deadline.capped(0.5) == 0.5
        assert deadline.fits(1.0) and not deadline.fits(3.0)
        with pytest.raises(BackendUnavailableError, match="call the endpoint"):
            deadline.check("call the endpoint", needed_s=3.0)
    assert deadline.remaining_s() is None


def test_an_inner_deadline_never_extends_an_outer_one():
    with deadline.deadline_after(1.0):
        with deadline.deadline_after(30.0):
            assert deadline.remaining_s() <= 1.0
        with deadline.deadline_after(0.2):
            assert deadline.remaining_s() <= 0.2
        assert 0.2 < deadline.remaining_s() <= 1.0


def test_a_passed_deadline_refuses_everything_with_a_503():
    with deadline.deadline_after(0.0):
        assert deadline.remaining_s() == 0.0
        with pytest.raises(deadline.DeadlineExceededError) as raised:
            deadline.check("search")
    assert raised.value.http_status == 503
