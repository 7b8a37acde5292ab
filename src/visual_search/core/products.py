"""Checks a catalogue's product columns (title, price, currency, product_url, brand) and builds a Product.

A malformed value is refused with InvalidRequestError naming the column and the value's problem, so a catalogue
is fixed before anything is indexed rather than half indexed. A shop link must be an absolute http(s) URL with a
host, no credentials and no spaces: it ends up as a link a shopper clicks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from visual_search.core.errors import InvalidRequestError
from visual_search.core.records import PRODUCT_FIELDS, Product
from visual_search.core.text_rules import checked_text
from visual_search.core.web_urls import disagreement

MAX_URL_CHARS = 2048
MAX_TEXT_CHARS = {"title": 300, "brand": 120}
_CURRENCY = re.compile(r"[A-Z]{3}")
_PRICE = re.compile(r"[0-9]{1,20}(\.[0-9]{1,10})?", re.ASCII)


def product_from_columns(columns: Mapping[str, str | None], *, where: str = "") -> Product:
    """A Product from the product columns present in `columns` (others are ignored); blank values are None."""
    values = {name: (columns.get(name) or "").strip() or None for name in PRODUCT_FIELDS}
    prefix = f"{where}: " if where else ""
    try:
        return Product(
            title=_text(values["title"], "title"),
            brand=_text(values["brand"], "brand"),
            price=_price(values["price"]),
            currency=_currency(values["currency"], values["price"]),
            product_url=checked_product_url(values["product_url"]),
        )
    except InvalidRequestError as error:
        raise InvalidRequestError(prefix + error.message, code="invalid_product") from None


def checked_product_url(url: str | None) -> str | None:
    """`url` unchanged when it is a well-formed absolute http(s) address; InvalidRequestError otherwise."""
    if url is None:
        return None
    if len(url) > MAX_URL_CHARS:
        raise InvalidRequestError(f"product_url is longer than {MAX_URL_CHARS} characters")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        raise InvalidRequestError(f"product_url {url[:80]!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise InvalidRequestError(f"product_url {url[:80]!r} is not a well-formed address ({error})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidRequestError(f"product_url {url[:80]!r} must start with http:// or https://")
    if not parts.hostname:
        raise InvalidRequestError(f"product_url {url[:80]!r} has no host name")
    if parts.username is not None or parts.password is not None:
        # "https://shop.example@elsewhere.example/" reads as the shop but goes elsewhere.
        raise InvalidRequestError(f"product_url {url[:80]!r} must not carry a user name or password")
    problem = disagreement(url)  # the shopper's browser must go where this check looked (core/web_urls.py)
    if problem:
        raise InvalidRequestError(f"product_url {url[:80]!r} is refused: {problem}")
    return url


def _text(value: str | None, name: str) -> str | None:
    return checked_text(value, name, MAX_TEXT_CHARS[name])  # the length and character rules of all shown text


def _price(value: str | None) -> float | None:
    if value is None:
        return None
    if not _PRICE.fullmatch(value):  # ASCII digits only: float() would also read "١٩" or "１９"
        raise InvalidRequestError(f"price {value[:40]!r} is not a number such as 19.99 (no currency sign, no minus)")
    price = float(value)
    if not math.isfinite(price):
        raise InvalidRequestError(f"price {value[:40]!r} is too large")
    return price


def _currency(value: str | None, price: str | None) -> str | None:
    if value is None:
        if price is not None:
            raise InvalidRequestError("a price needs a currency column (an ISO 4217 code such as EUR or USD)")
        return None
    code = value.upper()
    if not _CURRENCY.fullmatch(code):
        raise InvalidRequestError(f"currency {value[:20]!r} is not a three-letter ISO 4217 code such as EUR or USD")
    return code
