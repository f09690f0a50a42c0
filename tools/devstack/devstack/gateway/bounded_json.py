"""The one JSON reader every gateway service uses for request bodies and websocket frames.

``json.loads`` alone is not safe on hostile input: it recurses once per nesting level (a few
thousand ``[`` raise RecursionError, a 500) and builds every value before anything can be counted
(10 MB of ``[0,0,...]`` is five million objects and most of a second of the event loop). So a
document is first checked by a pre-scan made of a few linear passes of bytes methods that run in
C (replace, translate, split, count; no per-character Python loop), and only then parsed:

- nesting depth at most ``MAX_DEPTH``: hosted PostgREST gives up somewhere around a few thousand
  levels (Postgres' stack depth); 256 is far above what a real client sends (a Figma node tree
  a hundred frames deep is about 200 levels, object plus ``children`` array per frame);
- at most ``MAX_VALUES`` values (every container and every item or member after a comma counts
  one): this bounds what ``json.loads`` builds, and so its time (10-30 ms at the limit on a slow
  core; ``python -m bench.json_reader`` measures it);
- no ``\\u0000`` in any string or key (PostgreSQL text cannot hold NUL, so it would fail in the
  database instead of here), unless the caller relays the value without storing it;
- no unpaired UTF-16 surrogate escape (``"\\ud800"``: Python keeps it, UTF-8 cannot encode it);
- strict JSON: no ``NaN``/``Infinity`` literals, UTF-8 only.

Each service maps ``JsonError`` to its own error shape; ``problem`` says which rule was broken and
``path`` where (``("payload", "prompt")``).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

MAX_DEPTH = 256
MAX_VALUES = 100_000
# Integer literals longer than this are refused: Python converts them in quadratic time (a 10 MB
# body of 4,000-digit literals takes ~0.3 s, of 1,000-digit ones ~0.07 s). Hosted PostgREST hands
# any number to Postgres, where the SQL API refuses what does not fit (e.g. a payload number
# beyond double range is a 22023 naming `payload`): the limit sits well above that range (309
# digits) so devstack answers those the way hosted does. Floats may be as long as they like
# (float() is linear) but must be finite.
MAX_INT_DIGITS = 1000
# Bodies above this are parsed in a worker thread: each C pass still holds the GIL, but the event
# loop gets it back between passes, so its longest stall is one pass rather than their sum.
THREAD_ABOVE_BYTES = 64 * 1024  # below this a document holds too few values to cost much

TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels"
TOO_MANY_VALUES = f"more than {MAX_VALUES} values in one JSON document"

Problem = Literal["syntax", "depth", "values", "number", "nul", "surrogate"]
PathPart = str | int

_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_DEPTH_CHUNK = 16 * 1024
_DEPTH_STEP = tuple(1 if c in b"[{" else -1 if c in b"]}" else 0 for c in range(256))
# Escape pairs are replaced by two bytes no check looks for, so what remains of a backslash
# starts a real escape sequence and nothing new becomes adjacent.
_ESCAPED_BACKSLASH, _ESCAPED_QUOTE, _FILLER = b"\\\\", b'\\"', b"__"
_HIGH = rb"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_LONE_SURROGATE = re.compile(_HIGH + rb"(?!" + _LOW + rb")|(?<!" + _HIGH + rb")" + _LOW)
# Outside strings, with digits mapped to 0, E to e and + dropped: a longer run than an integer
# may have, or a 3-digit exponent (the only ways to write a float that overflows), switch on the
# per-number checks. False alarms only cost the slower checked parse.
_NUMBER_SHAPE = bytes.maketrans(b"123456789E", b"000000000e")
# Up to 200 digits with at most a 2-digit exponent is always below 1e300, finite as a float and
# short as an integer; anything longer takes the checked parse.
_LONG_DIGIT_RUN = b"0" * 201
_BIG_EXPONENT = b"e000"
# Each string is an array item, a member value or a member key, so a document within MAX_VALUES
# holds at most about twice that many strings; more quotes than this can only be refused.
_MAX_QUOTES = 4 * MAX_VALUES + 2


class JsonError(ValueError):
    """A document refused by ``parse``; ``reason`` says what was wrong, ``path`` where."""

    def __init__(self, problem: Problem, reason: str, path: tuple[PathPart, ...] = ()) -> None:
        self.problem = problem
        self.reason = reason
        self.path = path
        super().__init__(self.message())

    def dotted_path(self) -> str:
        """``payload.items[3].name`` (PostgREST and GoTrue style)."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{_printable(part)}" if text else _printable(part))
        return text

    def slashed_path(self) -> str:
        """``prefixes/3`` (the instancePath style of Storage's schema errors)."""
        return "/".join(_printable(str(part)) for part in self.path)

    def message(self) -> str:
        where = self.dotted_path()
        return f"{where}: {self.reason}" if where else self.reason


def _printable(key: str) -> str:
    """A key as it may appear in an error message: NUL and lone surrogates written as escapes."""
    return key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def _reject_constant(name: str) -> Any:
    raise JsonError("syntax", f"{name} is not valid JSON")


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonError("number", f"integer literal longer than {MAX_INT_DIGITS} digits")
    return int(literal)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise JsonError("number", f"number {literal[:20]}{'...' if len(literal) > 20 else ''} is out of range")
    return value


@dataclass(frozen=True)
class _Findings:
    """What the pre-scan saw that json.loads must be told about or the result walked for."""

    nul: bool
    lone_surrogate: bool
    big_numbers: bool


def _prescan(raw: bytes, *, allow_nul: bool) -> _Findings:
    """Check size and depth without building anything (each step is one pass in C)."""
    nul = lone = False
    text = raw
    if b"\\" in raw:
        text = raw.replace(_ESCAPED_BACKSLASH, _FILLER)
        if b"\\u" in text:
            nul = not allow_nul and b"\\u0000" in text
            lone = (b"\\ud" in text or b"\\uD" in text) and _LONE_SURROGATE.search(text) is not None
        text = text.replace(_ESCAPED_QUOTE, _FILLER)
    # Now every quote opens or closes a string: splitting on quotes leaves what is outside
    # strings (structure, numbers, literals) at the even positions.
    if text.count(b'"') > _MAX_QUOTES:
        raise JsonError("values", TOO_MANY_VALUES)
    outside = b"".join(text.split(b'"')[::2]) if b'"' in text else text
    opens = outside.count(b"[") + outside.count(b"{")
    if outside.count(b",") + opens > MAX_VALUES:
        raise JsonError("values", TOO_MANY_VALUES)
    if opens > MAX_DEPTH:
        brackets = outside.translate(None, _NOT_BRACKETS)
        if len(brackets) != 2 * opens:
            raise JsonError("syntax", "unbalanced brackets")
        _check_depth(brackets)
    shape = outside.translate(_NUMBER_SHAPE, b"+")
    return _Findings(nul, lone, _LONG_DIGIT_RUN in shape or _BIG_EXPONENT in shape)


def _check_depth(brackets: bytes) -> None:
    """Running depth over the brackets (at most 2 * MAX_VALUES of them), in C per chunk; between
    chunks a thread running this gives the GIL back to the event loop."""
    depth = 0
    for start in range(0, len(brackets), _DEPTH_CHUNK):
        steps = map(_DEPTH_STEP.__getitem__, brackets[start : start + _DEPTH_CHUNK])
        running = list(accumulate(steps, initial=depth))
        if max(running) > MAX_DEPTH:
            raise JsonError("depth", TOO_DEEP)
        depth = running[-1]


def _strings(value: Any, path: tuple[PathPart, ...] = ()) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    """Every string in ``value`` (keys included) with its path; only used on a refused document,
    which the pre-scan bounded already."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), key
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(raw: bytes | str, *, allow_nul: bool = False) -> Any:
    """The JSON value of ``raw`` (UTF-8), or JsonError. ``allow_nul`` only for values that are
    relayed and never stored (Realtime broadcasts)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    found = _prescan(data, allow_nul=allow_nul)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonError("syntax", f"not valid UTF-8 (byte {exc.start})") from None
    hooks: dict[str, Any] = {"parse_int": _bounded_int, "parse_float": _finite_float} if found.big_numbers else {}
    try:
        value = json.loads(text, parse_constant=_reject_constant, **hooks)
    except JsonError:
        raise
    except RecursionError:  # cannot happen within MAX_DEPTH; never let it escape as a 500
        raise JsonError("depth", TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, or an integer Python will not convert
        raise JsonError("syntax", str(exc)) from None
    if found.nul or found.lone_surrogate:
        for path, string in _strings(value):
            if found.nul and "\x00" in string:
                raise JsonError("nul", "must not contain NUL characters (\\u0000)", path)
            if found.lone_surrogate and not _encodable(string):
                raise JsonError("surrogate", "contains an unpaired UTF-16 surrogate escape", path)
    return value


async def parse_async(raw: bytes | str, *, allow_nul: bool = False) -> Any:
    """``parse``, in a worker thread for large documents so the event loop keeps serving."""
    if len(raw) > THREAD_ABOVE_BYTES:
        return await asyncio.to_thread(parse, raw, allow_nul=allow_nul)
    return parse(raw, allow_nul=allow_nul)
