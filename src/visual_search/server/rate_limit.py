"""A per-client rate limit on the local server's expensive routes, so that one client cannot take every core.

The expensive routes are those that run the model, scan the index or write: every POST (search, regions, adding
items, the SageMaker route), every DELETE, and GET /duplicates. Each client address has a token bucket of
`burst` tokens refilled at `per_s` a second; a request that finds the bucket empty is answered 429
`rate_limited` with `Retry-After` (whole seconds until a token is back), before its body is read.

Why a token bucket here rather than a library (`limits`, `slowapi`): a bucket lets a person's burst through (a
page of "More like this" clicks) and then holds a steady rate, with O(1) state per client and an exact
Retry-After; `limits`' moving window keeps every hit's timestamp per client and its fixed window lets twice the
rate through at a window's edge, and `slowapi` limits by decorating each route, which would put this rule into the
route table the wiring owns. Forty lines, no new dependency on the laptop install.

Default (`rate_limit_for_host`): off when the server binds loopback (one user; every local process is
127.0.0.1, and behind a reverse proxy every client would share the proxy's address), on at 20 a second with
bursts of 100 when it binds anything else. VISUAL_SEARCH_RATE_LIMIT_PER_S sets it either way (0 turns it off).
The AWS deployment keeps API Gateway's throttling instead (template.yaml).
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from visual_search.core.errors import error_body
from visual_search.core.settings import Settings

DEFAULT_PER_S = 20.0
DEFAULT_BURST = 100
MAX_CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first (it had a full bucket)


def rate_limit_for_host(settings: Settings, host: str) -> Settings:
    """`settings` with the rate limit decided for a server bound to `host` when no setting chose one."""
    if settings.rate_limit_per_s is not None:
        return settings
    return replace(settings, rate_limit_per_s=0.0 if _is_loopback(host) else DEFAULT_PER_S)


class TokenBuckets:
    """One token bucket per client key; `take(client)` is 0 when the request may go, else seconds to wait."""

    def __init__(self, per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic):
        self.per_s, self.burst, self._clock = per_s, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.per_s)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.per_s
            self._buckets[client] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
            return wait


def is_expensive(method: str, path: str) -> bool:
    return method in ("POST", "DELETE") or (method in ("GET", "HEAD") and path.rstrip("/") == "/duplicates")


class RateLimitMiddleware:
    """Pure ASGI, so a refused request is answered before anything reads its body."""

    def __init__(self, app, *, per_s: float, burst: int):
        self.app = app
        self.buckets = TokenBuckets(per_s, burst)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_expensive(scope["method"], scope["path"]):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.buckets.take(client)
        if wait == 0.0:
            return await self.app(scope, receive, send)
        retry_after = str(max(1, math.ceil(wait)))
        body = json.dumps(
            error_body(
                "rate_limited",
                f"too many requests from this client: at most {self.buckets.per_s:g} a second "
                f"(bursts of {self.buckets.burst}); retry in {retry_after} s",
            )
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"retry-after", retry_after.encode())]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def add_rate_limit(app, settings: Settings) -> None:
    """Limits the expensive routes of `app` per client when settings.rate_limit_per_s is above 0."""
    if settings.rate_limit_per_s:
        app.add_middleware(RateLimitMiddleware, per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
