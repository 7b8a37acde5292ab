"""Calls to one OpenSearch node with bounded backoff, translated into this library's errors.

Retried: HTTP 429 (a full queue), 5xx and connection failures, with exponential backoff and jitter.
Never retried: 401/403 (BackendUnauthorizedError) and other 4xx (InvalidRequestError). When attempts run out:
BackendUnavailableError, whose message names the endpoint and the last problem.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from visual_search.core import deadline as request_deadline
from visual_search.core.errors import BackendUnauthorizedError, BackendUnavailableError, InvalidRequestError
from visual_search.indexes.opensearch.connection import OpenSearchLocation, build_client

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter: with the defaults, at most 4 attempts over about 1.4 s."""

    attempts: int = 4
    first_delay_s: float = 0.2
    max_delay_s: float = 3.0

    def delay_s(self, attempt: int) -> float:
        return min(self.max_delay_s, self.first_delay_s * 2**attempt) * random.uniform(0.8, 1.2)


DEFAULT_RETRY = RetryPolicy()


MIN_ATTEMPT_S = 0.5  # a retry is not worth starting with less of the request's deadline left after its delay


def is_retryable_status(status: object) -> bool:
    return status == 429 or (isinstance(status, int) and status >= 500)


class OpenSearchSession:
    """A lazily built client for one location. close() releases its connections; the next call reconnects."""

    def __init__(self, location: OpenSearchLocation, *, timeout_s: float, verify_certs: bool, retry: RetryPolicy):
        self.location = location
        self.retry = retry
        self._timeout_s = timeout_s
        self._verify_certs = verify_certs
        self._client = None

    def call(self, operation: Callable[[Any], T], *, what: str) -> T:
        """Run `operation(client)` with retries. opensearchpy.NotFoundError passes through for callers expecting it."""
        if self._client is None:
            self._client = build_client(self.location, timeout_s=self._timeout_s, verify_certs=self._verify_certs)
        client = self._client
        return call_with_retries(
            lambda: operation(client), what=what, endpoint=self.location.endpoint, policy=self.retry
        )

    def bulk(
        self, index: str, actions: list[list[dict[str, Any]]], *, refresh: str | bool, what: str
    ) -> list[dict[str, Any]]:
        """Send bulk actions (each its header line and optional document) to `index`'s own _bulk endpoint (so
        IAM can scope writes to the index) and return the settled items.

        A bulk request can succeed while single items are rejected with 429 (the write queue is full): those
        items are resent with the same backoff, then raise BackendUnavailableError. Any other failed item raises
        InvalidRequestError; a delete of a missing document (404) is a success.
        """
        params = {} if refresh is False else {"refresh": str(refresh).lower()}
        pending, settled = actions, []
        for attempt in range(self.retry.attempts):
            body = [line for action in pending for line in action]
            answer = self.call(_bulk_request(body, index, params), what=what)
            busy: list[list[dict[str, Any]]] = []
            for action, item in zip(pending, answer["items"], strict=True):
                ((kind, outcome),) = item.items()
                status = outcome.get("status", 200)
                if is_retryable_status(status) and attempt + 1 < self.retry.attempts:
                    busy.append(action)
                elif is_retryable_status(status):
                    raise BackendUnavailableError(
                        f"OpenSearch at {self.location.endpoint} kept refusing items with HTTP {status} "
                        f"({self.retry.attempts} attempts to {what}): {outcome.get('error')}"
                    )
                elif status >= 300 and not (kind == "delete" and status == 404):
                    raise InvalidRequestError(f"OpenSearch refused to {what}: {outcome.get('error')}")
                else:
                    settled.append(item)
            if not busy:
                break
            pending = busy
            time.sleep(self.retry.delay_s(attempt))
        return settled

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def call_with_retries(operation: Callable[[], T], *, what: str, endpoint: str, policy: RetryPolicy) -> T:
    from opensearchpy.exceptions import (
        AuthenticationException,
        AuthorizationException,
        ConnectionError,
        NotFoundError,
        TransportError,
    )

    last_problem = ""
    for attempt in range(policy.attempts):
        if attempt:
            delay = policy.delay_s(attempt - 1)
            if not request_deadline.fits(delay + MIN_ATTEMPT_S):  # the request's deadline comes first
                raise request_deadline.DeadlineExceededError(
                    f"OpenSearch at {endpoint}: {last_problem}; no time left to {what} again within the deadline"
                )
            time.sleep(delay)
        try:
            return operation()
        except (AuthenticationException, AuthorizationException) as error:
            raise BackendUnauthorizedError(
                f"OpenSearch at {endpoint} refused to {what} (HTTP {error.status_code}): check the credentials "
                f"(URL userinfo, VISUAL_SEARCH_OPENSEARCH_USERNAME/PASSWORD, or the AWS role's access policy)"
            ) from error
        except ConnectionError as error:
            last_problem = f"could not connect ({_connection_cause(error)})"
        except NotFoundError:
            raise
        except TransportError as error:
            if not is_retryable_status(error.status_code):
                raise InvalidRequestError(
                    f"OpenSearch at {endpoint} rejected the request to {what}: {error}"
                ) from error
            last_problem = f"answered HTTP {error.status_code} ({error.error})"
    raise BackendUnavailableError(
        f"OpenSearch at {endpoint} is unavailable: {last_problem}, {policy.attempts} attempts to {what}; "
        f"is the node running? (locally: scripts/opensearch.sh start)"
    )


def _connection_cause(error) -> str:
    text = str(error.info if isinstance(error.info, BaseException) else error)
    for known in ("Connection refused", "timed out", "Name or service not known", "certificate verify failed"):
        if known.lower() in text.lower():
            return known.lower()
    return text[:200]


def _bulk_request(body: list[dict[str, Any]], index: str, params: dict[str, str]) -> Callable[[Any], Any]:
    """One bulk call over `body`, bound now: a retry sends the body of its own attempt."""
    return lambda client: client.bulk(body=body, index=index, params=params)
