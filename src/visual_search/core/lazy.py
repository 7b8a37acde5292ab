"""A value built on first use, once, even when several threads ask at the same moment.

The server's search API, the Lambda functions' services and the AWS clients are all expensive to build (a model
to load, an index to open, credentials to resolve) and must not be built at import time, so that a failing cold
start is reported per request and retried; this is the one implementation of that pattern."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
                value = self._value
        return value

    @property
    def built(self) -> bool:
        return self._value is not None

    def reset(self) -> None:
        """Forget the value, so the next get() builds it again (new settings, tests)."""
        with self._lock:
            self._value = None
