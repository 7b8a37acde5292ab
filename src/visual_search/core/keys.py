"""Which image keys the product accepts: a key must survive a round trip through a URL, a terminal and UTF-8.

A key is refused when it holds a control character (Unicode category Cc: C0, DEL and C1 — a newline broke the
key's /images/ URL, an escape sequence would drive the terminal that prints results) or a lone surrogate (how
Python carries a file name that is not valid UTF-8; no database or JSON document can store it).
"""

from __future__ import annotations

import unicodedata


def key_problem(key: str) -> str | None:
    """Why `key` cannot be indexed, in words for the person who named the file; None when it is fine."""
    for position, character in enumerate(key):
        if unicodedata.category(character) == "Cc":
            return f"its name holds the control character U+{ord(character):04X} at position {position + 1}; rename it"
        if 0xD800 <= ord(character) <= 0xDFFF:
            return "its name is not valid UTF-8; rename it"
    return None


def printable(text: str) -> str:
    """`text` safe to print: undecodable bytes as \\xNN and control characters as escapes, nothing raw."""
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(
        character if unicodedata.category(character) != "Cc" else character.encode("unicode_escape").decode("ascii")
        for character in raw
    )
