"""Whether a missing real service skips a test (locally) or fails it (CI=true). A module of its own, so that test
helpers can import it by a name no other file shares (every test folder may have a `conftest`)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(available: bool, what: str, how: str) -> None:
    """Skip with instructions locally; under CI=true a missing service is a failure, never a skip."""
    if available:
        return
    message = f"{what} is not available: {how}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
