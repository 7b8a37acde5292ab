"""The length and shape of every text a caller gives the catalogue: labels, product text, attributes, numbers.

One module, used wherever such text comes in (the catalogue CSV, POST /items, S3 object metadata, and so the
folder watcher, which reads the CSV), so that a field refused on one path is refused on every path.

- Characters: none that changes how the text around it is shown without being seen itself. Control characters
  (Unicode Cc, NUL included), format characters (Cf: the bidi overrides such as U+202E that spoof names, zero-width
  characters), the line and paragraph separators U+2028/U+2029 (Zl, Zp) and lone surrogates (Cs) are refused.
  In shown product text (title, brand, attribute values) the zero-width joiner and non-joiner (U+200D, U+200C)
  stay allowed: Persian and Indic scripts and emoji sequences need them, and they cannot reorder text.
- Lengths: each field has a bound in characters (below); attributes are bounded in count, name and value length,
  and are flat (a JSON object of text values: nesting is refused before it can reach the recursion limit).
- Numbers (prices, thresholds) are ASCII: `[0-9]+(.[0-9]+)?`. Python's float() also reads Arabic-Indic or
  fullwidth digits and underscores, which a shopper's screen would show as something else.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping

from visual_search.core.errors import InvalidRequestError

MAX_LABEL_CHARS = 200
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_NAME_CHARS = 100
MAX_ATTRIBUTE_VALUE_CHARS = 2000
MAX_ATTRIBUTES_JSON_CHARS = MAX_ATTRIBUTES * (MAX_ATTRIBUTE_NAME_CHARS + MAX_ATTRIBUTE_VALUE_CHARS) * 2
MAX_NUMBER_CHARS = 30
MAX_JSON_DEPTH = 32  # far beyond a flat object, far below the parser's recursion limit
_REFUSED_CATEGORIES = {"Cc": "control", "Cf": "format", "Zl": "line separator", "Zp": "paragraph separator"}
_JOINERS = frozenset("\u200c\u200d")  # zero-width non-joiner and joiner
_ASCII_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


def character_problem(text: str, *, allow_joiners: bool = False) -> str | None:
    """Why `text` holds a character that must not be shown (see the module's rule), naming it and where; None."""
    for position, character in enumerate(text):
        if allow_joiners and character in _JOINERS:
            continue
        category = unicodedata.category(character)
        if category in _REFUSED_CATEGORIES:
            name = "NUL" if character == "\0" else f"the {_REFUSED_CATEGORIES[category]} character"
            return f"it holds {name} U+{ord(character):04X} at position {position + 1}"
        if category == "Cs":
            return "it is not valid UTF-8 (a lone surrogate)"
    return None


def checked_text(value: str | None, what: str, max_chars: int, *, allow_joiners: bool = True) -> str | None:
    """`value` when it is at most `max_chars` characters with no refused character; InvalidRequestError naming
    `what` otherwise. None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be text")
    if len(value) > max_chars:
        raise InvalidRequestError(f"{what} is longer than {max_chars:,} characters ({len(value):,})")
    problem = character_problem(value, allow_joiners=allow_joiners)
    if problem:
        raise InvalidRequestError(f"{what} cannot be used: {problem}")
    return value


def checked_label(label: str | None) -> str | None:
    """A label, stripped, blank as None; a label is a filter value and a UI chip, so no joiners either."""
    label = (label or "").strip() or None
    return checked_text(label, "the label", MAX_LABEL_CHARS, allow_joiners=False)


def checked_attributes(attributes: Mapping[str, str] | None) -> dict[str, str]:
    """Attributes as a plain dict after the count, name and value bounds and the character rule."""
    attributes = dict(attributes or {})
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidRequestError(f"at most {MAX_ATTRIBUTES} attributes, not {len(attributes)}")
    for name, value in attributes.items():
        shown = repr(name[:40]) if isinstance(name, str) else "an attribute name"
        checked_text(name, f"the attribute name {shown}", MAX_ATTRIBUTE_NAME_CHARS, allow_joiners=False)
        checked_text(value, f"the attribute {shown}", MAX_ATTRIBUTE_VALUE_CHARS)
    return attributes


def bounded_json(text: str, what: str) -> object:
    """`text` parsed as JSON only after its size and nesting are known to be small: a body of 100,000 nested
    brackets is InvalidRequestError here, never handed to a recursive parser. Malformed JSON is ValueError."""
    if len(text) > MAX_ATTRIBUTES_JSON_CHARS:
        raise InvalidRequestError(f"{what} is longer than {MAX_ATTRIBUTES_JSON_CHARS:,} characters")
    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise InvalidRequestError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels; it must be a flat JSON object")
    return json.loads(text) if text.strip() else {}


def attributes_from_json(text: str) -> dict[str, str]:
    """A JSON object of text values within every attribute bound; InvalidRequestError for anything else."""
    try:
        value = bounded_json(text, "attributes")
    except ValueError:
        raise InvalidRequestError('attributes must be a JSON object such as {"colour": "red"}') from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequestError('attributes must be a JSON object of text values, such as {"colour": "red"}')
    return checked_attributes(value)


def ascii_number(text: str, what: str) -> float:
    """A non-negative decimal written with ASCII digits (19.99, 0.9); InvalidRequestError for anything else."""
    text = text.strip() if isinstance(text, str) else text
    if not isinstance(text, str) or len(text) > MAX_NUMBER_CHARS or not _ASCII_DECIMAL.fullmatch(text):
        shown = repr(text[:40]) if isinstance(text, str) else repr(text)
        raise InvalidRequestError(f"{what} {shown} is not a number written with the digits 0-9, such as 19.99")
    return float(text)


def _nesting_depth(text: str) -> int:
    """The deepest nesting of JSON brackets outside strings, counted without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in "]}":
            depth -= 1
    return deepest
