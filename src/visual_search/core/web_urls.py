"""Reading a URL the way browsers read it (the WHATWG URL Standard), before the product accepts or fetches it.

Python's urlsplit follows RFC 3986; browsers follow WHATWG, and the two disagree on spellings an attacker picks:
in `https://shop.example\\.evil.example/` a browser sees the host `shop.example` (a backslash is a path
separator in http and https) where urlsplit sees `shop.example\\.evil.example`; `https:evil.example` is a full
address to a browser and a host-less one to Python. A link the shopper clicks, or an address the server fetches,
must mean one thing, so `disagreement` parses with ada (a WHATWG-compliant parser, the one Node.js uses) and
refuses any URL whose scheme, host, port or credentials differ between the two readings. Port 0 is refused too:
no server listens there.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

import ada_url

_DEFAULT_PORTS = {"http": 80, "https": 443}


def disagreement(url: str) -> str | None:
    """Why `url` is not one http(s) address that browsers and Python read alike (host, port, credentials), or
    None when they agree. Raises nothing: a URL either parser cannot read is a disagreement too."""
    try:
        python = urlsplit(url)
        python_port = python.port
    except ValueError as error:
        return f"it is not a well-formed address ({error})"
    try:
        browser = ada_url.parse_url(url)
    except ValueError:
        return "browsers cannot read it as an address"
    scheme = browser["protocol"].rstrip(":")
    if scheme != python.scheme.lower():
        return f"browsers read its scheme as {scheme!r}"
    browser_host = browser["hostname"]
    python_host = _browser_form_of_host(python)
    if python_host is None or browser_host != python_host:
        return f"browsers read its host as {browser_host!r}, not {python.hostname!r}"
    browser_port = int(browser["port"]) if browser["port"] else _DEFAULT_PORTS.get(scheme)
    if browser_port != (python_port if python_port is not None else _DEFAULT_PORTS.get(scheme)):
        return f"browsers read its port as {browser_port}"
    if browser_port == 0:
        return "port 0 is no port a server listens on"
    if (browser["username"] or None, browser["password"] or None) != (python.username, python.password):
        return "browsers read its user name or password differently"
    return None


def _browser_form_of_host(parts: SplitResult) -> str | None:
    """urlsplit's host as a browser writes it (lower case, punycode, IPv4 in dotted decimal), or None when it holds
    a character a browser would read as the end of the host (a backslash, say)."""
    host = parts.hostname
    if not host:
        return None
    if any(character in host for character in "\\/?#@%"):  # %: a browser decodes it, a resolver would not
        return None
    literal = f"[{host}]" if ":" in host else host
    try:
        return ada_url.parse_url(f"{parts.scheme.lower()}://{literal}/")["hostname"]
    except ValueError:
        return None
