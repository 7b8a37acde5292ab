"""SSRF-safe fetching of a query image by URL: public addresses only, pinned connections, bounded time and size.

Why it is safe: only http/https; the host is resolved once and every address must be public (not private,
loopback, link-local such as 169.254.169.254, multicast, reserved, unspecified, nor an IPv6 form embedding
one of those); the connection goes to the checked address (the Host header and TLS SNI/certificate check use the
original name), so a second DNS answer cannot swap it; each redirect (at most 3) is checked the same way; the
whole fetch has one deadline and the body is cut at a size cap; only image/* responses are accepted.
A URL that cannot be parsed is the caller's error (400 url_malformed) when the caller wrote it, and the image
host's (502 bad_redirect) when it came in a Location header: no parsing error ever escapes as a 500.
Intranet hosts can be allowed explicitly with `allowlist` entries: "host", "host:port" (matching the URL's host
as written, or its normalised IP) or a CIDR such as "10.1.0.0/16" (matching the resolved address).
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from visual_search.core import deadline as request_deadline
from visual_search.core.errors import FetchError, FetchRefusedError, FetchTimeoutError, ImageTooLargeError
from visual_search.core.web_urls import disagreement
from visual_search.fetching.url_policy import Allowlist, Resolver, denied_reason, parse_ip, system_resolver

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_CHUNK_BYTES = 64 * 1024
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    content_type: str
    final_url: str


class UrlFetcher:
    """Fetches image bytes by URL. Raises FetchRefusedError (400), FetchError (502), FetchTimeoutError (504)
    and ImageTooLargeError (413) when the body exceeds `max_bytes`."""

    def __init__(
        self,
        *,
        allowlist: Iterable[str] = (),
        timeout_s: float = 5.0,
        max_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 3,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.allowlist = Allowlist(allowlist)
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.resolver = resolver
        self._ssl_context = ssl_context

    def fetch(self, url: str) -> FetchedImage:
        request_deadline.check("fetch the image URL")
        deadline = time.monotonic() + request_deadline.capped(self.timeout_s)  # the request's deadline, if sooner
        for hop in range(self.max_redirects + 1):
            target = self._check(url, from_redirect=hop > 0)
            status, headers, body = self._get(target, deadline)
            if status in _REDIRECT_STATUSES:
                location = headers.get("location")
                if not location:
                    raise FetchError(f"the image URL answered {status} without a Location")
                url = _follow(url, location)
                continue
            if status != 200:
                raise FetchError(f"the image URL answered HTTP {status}")
            content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if not content_type.startswith("image/"):
                raise FetchRefusedError(
                    f"the URL returned {content_type or 'no content type'}, not an image", code="url_not_image"
                )
            return FetchedImage(body, content_type, url)
        raise FetchRefusedError(f"the image URL redirected more than {self.max_redirects} times")

    def _check(self, url: str, *, from_redirect: bool = False) -> _Target:
        """Validate the scheme and host, resolve it once, and choose the address to connect to."""
        parts, port = _split(url, from_redirect)
        if parts.scheme not in ("http", "https"):
            raise FetchRefusedError("only http and https image URLs are allowed")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise FetchRefusedError("the image URL has no host")
        literal = parse_ip(host)
        host_allowed = self.allowlist.allows_host(str(literal) if literal else host, port)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolver(host, port)]
            except (OSError, UnicodeError, ValueError):
                raise FetchError(f"the image host {host!r} could not be resolved") from None
        if not addresses:
            raise FetchError(f"the image host {host!r} has no address")
        for address in addresses:
            # Every answer must pass: an attacker's DNS could mix one public and one private address.
            reason = denied_reason(address)
            if reason and not (host_allowed or self.allowlist.allows_address(address)):
                raise FetchRefusedError(
                    f"the image URL points to a private or reserved address ({address}, {reason}); "
                    "intranet hosts must be allow-listed"
                )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return _Target(parts.scheme, host, port, str(addresses[0]), path)

    def _get(self, target: _Target, deadline: float) -> tuple[int, dict[str, str], bytes]:
        connection = target.connection(_remaining(deadline), self._ssl_context)
        # Socket timeouts bound each read, not the exchange: a server trickling header bytes would restart them
        # forever. A watchdog shuts the socket down at the deadline, whatever phase the exchange is in.
        watchdog = threading.Timer(_remaining(deadline), _shut_down, args=(connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("GET", target.path, headers={"Accept": "image/*", "User-Agent": "visual-search"})
            sock = connection.sock  # kept: http.client drops its reference once the response will close the socket
            response = connection.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            if response.status in _REDIRECT_STATUSES or response.status != 200:
                return response.status, headers, b""
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise ImageTooLargeError(f"the image at the URL is over the {self.max_bytes:,}-byte limit")
            return response.status, headers, self._read_capped(sock, response, deadline)
        except TimeoutError:
            raise FetchTimeoutError(f"fetching the image URL took longer than {self.timeout_s:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:  # the watchdog cut it
                raise FetchTimeoutError(f"fetching the image URL took longer than {self.timeout_s:g} s") from None
            if isinstance(exc, ssl.SSLError):
                raise FetchError(f"TLS with the image host failed ({exc.reason or exc})") from None
            raise FetchError(f"fetching the image URL failed ({_describe(exc)})") from None
        except ValueError:  # http.client refusing a header value: the URL checks should have caught it first
            raise FetchError("fetching the image URL failed (the request could not be written)") from None
        finally:
            watchdog.cancel()
            connection.close()

    def _read_capped(self, sock: socket.socket, response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        received = 0
        while True:
            # One deadline for the whole fetch: a server trickling a byte a second cannot hold a worker.
            sock.settimeout(_remaining(deadline))
            chunk = response.read1(_CHUNK_BYTES)
            if not chunk:
                if time.monotonic() >= deadline:  # not the end of the body: the watchdog shut the socket
                    raise FetchTimeoutError(f"fetching the image URL took longer than {self.timeout_s:g} s")
                return b"".join(chunks)
            received += len(chunk)
            if received > self.max_bytes:
                raise ImageTooLargeError(f"the image at the URL is over the {self.max_bytes:,}-byte limit")
            chunks.append(chunk)


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    address: str
    path: str

    def connection(self, timeout_s: float, ssl_context: ssl.SSLContext | None) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return _PinnedHTTPSConnection(self.host, self.port, self.address, timeout_s, ssl_context)
        return _PinnedHTTPConnection(self.host, self.port, self.address, timeout_s)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Sends Host: <name> but connects to the address that passed the check, never re-resolving the name."""

    def __init__(self, host: str, port: int, address: str, timeout_s: float):
        super().__init__(host, port, timeout=timeout_s)
        self._pinned_address = address

    def connect(self) -> None:
        self.raw_sock = self.sock = socket.create_connection((self._pinned_address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address, with SNI and certificate verification for the original host name."""

    def __init__(self, host: str, port: int, address: str, timeout_s: float, context: ssl.SSLContext | None):
        self._tls = context or ssl.create_default_context()
        super().__init__(host, port, timeout=timeout_s, context=self._tls)
        self._pinned_address = address

    def connect(self) -> None:
        self.raw_sock = socket.create_connection((self._pinned_address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(self.raw_sock, server_hostname=self.host)


def _shut_down(connection: http.client.HTTPConnection) -> None:
    """Unblocks any read on the connection's socket (the TCP one, so a TLS handshake in progress stops too)."""
    sock = getattr(connection, "raw_sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _split(url: str, from_redirect: bool):
    """(urlsplit parts, port); any parsing error is url_malformed (400), or bad_redirect (502) in a Location."""
    try:
        url = url.strip()
        if _UNSAFE_CHARACTERS.search(url):  # http.client would refuse them later, with a less helpful error
            raise ValueError("control characters or spaces")
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme in ("http", "https") and disagreement(url):  # browsers (WHATWG) would go elsewhere
            raise ValueError(disagreement(url))
        if "[" in parts.netloc and parse_ip(parts.hostname or "") is None:
            raise ValueError("a bracketed host must be an IP address")  # e.g. [zz], or an IPvFuture [v1.x]
    except ValueError:
        if from_redirect:
            raise FetchError("the image host redirected to a malformed URL", code="bad_redirect") from None
        raise FetchRefusedError("the image URL is malformed", code="url_malformed") from None
    return parts, port


def _follow(url: str, location: str) -> str:
    """The absolute URL a Location header points to; a Location that cannot be joined is the host's error (502)."""
    try:
        return urljoin(url, location)
    except ValueError:
        raise FetchError("the image host redirected to a malformed URL", code="bad_redirect") from None


def _describe(exc: OSError | http.client.HTTPException) -> str:
    """Plain words for a connection failure, without exception class names."""
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset"
    if isinstance(exc, http.client.HTTPException):
        return "the answer was not valid HTTP"
    return exc.strerror or "a network error"


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchTimeoutError("fetching the image URL ran out of time")
    return remaining
