"""JSON text that Python's json cannot decode whole (nested deeper than its recursion limit, a
number longer than int conversion allows): split a top-level array into its elements, and read
a top-level string field, by scanning tokens without building nested values (linear, no recursion).
"""

from __future__ import annotations

import json
import re

# A string (with its escapes) or one structural character; numbers, literals and blanks are skipped.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]', re.DOTALL)


def array_items(text: str) -> list[str]:
    """The elements of the top-level JSON array ``text`` as text; any other value is one element."""
    body = text.strip()
    if not body.startswith("["):
        return [body] if body else []
    items: list[str] = []
    depth, start = 0, 0
    for match in _TOKEN.finditer(body):
        part = match.group()
        if part in ("[", "{"):
            depth += 1
            if depth == 1:
                start = match.end()
        elif part in ("]", "}"):
            depth -= 1
            if depth == 0:
                items.append(body[start : match.start()])
                return [item.strip() for item in items if item.strip()]
        elif part == "," and depth == 1:
            items.append(body[start : match.start()])
            start = match.end()
    items.append(body[start:])  # unterminated: what is there is the last element
    return [item.strip() for item in items if item.strip()]


def top_level_string(text: str, key: str) -> str | None:
    """The value of ``key`` in the JSON object ``text`` if it is a string, read without decoding the rest."""
    depth, name, after_colon = 0, None, False
    for match in _TOKEN.finditer(text):
        part = match.group()
        if part in ("{", "["):
            depth += 1
        elif part in ("}", "]"):
            depth -= 1
        elif depth != 1:
            continue
        elif part == ":":
            after_colon = True
        elif part == ",":
            name, after_colon = None, False
        elif after_colon:
            if name == key:
                return _string(part)
            after_colon = False
        else:
            name = _string(part)
    return None


def _string(text: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None
