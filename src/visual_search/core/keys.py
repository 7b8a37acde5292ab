"""Which image keys the product accepts: a key must survive a round trip through a URL, a terminal, UTF-8 and
every backend that stores it, and must look like what it is.

`key_problem` is the one key check. A key is refused when it holds
- a control character (Unicode Cc: C0 with NUL, DEL and C1 — a newline broke the key's /images/ URL, an escape
  sequence would drive the terminal that prints results), a format character (Cf: a right-to-left override
  U+202E shows `gpj.exe` as `exe.jpg`; zero-width characters make two keys look alike), or a line or paragraph
  separator (U+2028, U+2029);
- a lone surrogate (how Python carries a file name that is not valid UTF-8; no database or JSON can store it);
- a character that NFKC folds into a path character (`．` FULLWIDTH FULL STOP, `／`, `‥`...): `．．/evil.jpg`
  would read as `../evil.jpg` to anything that normalises, so such look-alikes are refused rather than guessed;
- more bytes than the strictest backend stores: 255 UTF-8 bytes per path part (file names on ext4, APFS, NTFS),
  512 bytes in all (OpenSearch document ids; S3 keys allow 1,024);
- a shape that is not a relative path of named parts (`/a.jpg`, `a//b.jpg`, `../a.jpg`) or a hidden part
  (`.cache/a.jpg`: what a folder listing never shows);
- a name without an image suffix.
"""

from __future__ import annotations

import unicodedata

from visual_search.core.images import IMAGE_SUFFIXES

MAX_KEY_LENGTH = 1024  # characters a request may name a key with: refused before any other check reads it
MAX_KEY_BYTES = 512  # OpenSearch _id limit; S3 allows 1,024, the embedded index any
MAX_KEY_PART_BYTES = 255  # NAME_MAX of ext4, XFS, APFS; NTFS allows 255 UTF-16 units, no fewer bytes in UTF-8
_PATH_CHARACTERS = frozenset("./\\")
_REFUSED = {"Cc": "control", "Cf": "format", "Zl": "line separator", "Zp": "paragraph separator"}


def key_problem(key: str) -> str | None:
    """Why `key` cannot name a catalogue image, in words for the person who named the file; None when it is fine.
    The one key check of every entry (a folder's listing, its file events, a bucket's listing and events, the CLI,
    POST /items), in order: each character, the size in bytes, the shape, the image suffix."""
    return _character_problem(key) or _size_problem(key) or _shape_problem(key) or _suffix_problem(key)


def _character_problem(key: str) -> str | None:
    for position, character in enumerate(key):
        category = unicodedata.category(character)
        if category in _REFUSED:
            kind = _REFUSED[category]
            return f"its name holds the {kind} character U+{ord(character):04X} at position {position + 1}; rename it"
        if category == "Cs":
            return "its name is not valid UTF-8; rename it"
        if character not in _PATH_CHARACTERS and _PATH_CHARACTERS & set(unicodedata.normalize("NFKC", character)):
            return (
                f"its name holds U+{ord(character):04X} at position {position + 1}, which reads as "
                f"{unicodedata.normalize('NFKC', character)!r} once normalised; rename it"
            )
    return None


def _size_problem(key: str) -> str | None:
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        return f"its name is {size:,} bytes in UTF-8, over the {MAX_KEY_BYTES} every index can store; shorten it"
    longest = max((len(part.encode("utf-8")) for part in key.split("/")), default=0)
    if longest > MAX_KEY_PART_BYTES:
        return f"a part of its name is {longest:,} bytes in UTF-8, over the {MAX_KEY_PART_BYTES} of a file name"
    return None


def _shape_problem(key: str) -> str | None:
    """A relative '/'-separated path of named parts (no '', '.' or '..'), none of them hidden."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return "it is not a relative path of named parts such as shoes/red-1.jpg"
    if any(part.startswith(".") for part in parts):
        return "a part of its name is hidden (starts with '.'); rename it"
    return None


def _suffix_problem(key: str) -> str | None:
    if not key.lower().endswith(IMAGE_SUFFIXES):
        return f"it does not end in an image suffix ({', '.join(IMAGE_SUFFIXES)})"
    return None


def printable(text: str) -> str:
    """`text` safe to print: undecodable bytes as \\xNN and control, format and separator characters as escapes."""
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(
        character if unicodedata.category(character) not in _REFUSED else character.encode("unicode_escape").decode()
        for character in raw
    )
