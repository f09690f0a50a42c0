"""The gateway's bounded JSON reader: limits checked before anything is built, NUL and unpaired
surrogates named by their path, strict numbers, and exactly json.loads' answer for everything else
(seeded random documents, valid and mangled)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from devstack.gateway import bounded_json
from devstack.gateway.bounded_json import MAX_DEPTH, MAX_INT_DIGITS, MAX_VALUES, JsonError, parse


def refused(raw: bytes | str, **options: Any) -> JsonError:
    with pytest.raises(JsonError) as info:
        parse(raw, **options)
    return info.value


def nested(depth: int, *, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


# -- depth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [nested, nested_objects], ids=["arrays", "objects"])
def test_nesting_up_to_the_limit_parses_and_one_more_level_is_refused(make: Any) -> None:
    assert parse(make(MAX_DEPTH)) == json.loads(make(MAX_DEPTH))
    error = refused(make(MAX_DEPTH + 1))
    assert error.problem == "depth"
    assert str(error) == f"JSON nested deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_thousands_of_levels_are_refused_without_recursion(depth: int) -> None:
    # json.loads raises RecursionError here; the reader must answer with its own error.
    with pytest.raises(RecursionError):
        json.loads(nested(depth))
    assert refused(nested(depth)).problem in ("depth", "values")
    assert refused('{"payload": ' + nested(depth) + "}").problem in ("depth", "values")


def test_a_deep_document_that_is_also_unbalanced_is_refused_as_syntax() -> None:
    assert refused("[" * 5_000).problem == "syntax"
    assert refused("[" * 5_000 + "]" * 4_999 + "}").problem in ("syntax", "depth")


@pytest.mark.parametrize("before", [0, 10_000, 40_000])
def test_depth_is_tracked_across_long_documents(before: int) -> None:
    # The running depth is computed in chunks: nesting after many shallow brackets still counts.
    prefix = "[" + "[]," * before
    assert parse(prefix + nested(MAX_DEPTH - 1) + "]")[-1] == json.loads(nested(MAX_DEPTH - 1))
    assert refused(prefix + nested(MAX_DEPTH) + "]").problem == "depth"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    doc = json.dumps(["[" * 10_000, "{" * 10_000, "]]]" + "[" * 500])
    assert parse(doc) == json.loads(doc)


def test_escaped_quotes_and_backslashes_do_not_confuse_the_string_scan() -> None:
    # '\\"' is an escaped quote; '\\\\' an escaped backslash followed by a real closing quote.
    inside = json.dumps({"q": 'he said "[[[" \\', "r": "\\" * 7 + '"' + "[" * 400})
    assert parse(inside) == json.loads(inside)
    outside = '["\\\\", ' + nested(MAX_DEPTH) + "]"  # a string ending in a backslash, then real nesting
    assert refused(outside).problem == "depth"


# -- size ------------------------------------------------------------------------------------------


def test_values_up_to_the_limit_parse_and_more_are_refused() -> None:
    at_limit = "[" + ",".join(["0"] * MAX_VALUES) + "]"  # one container and MAX_VALUES - 1 commas
    assert len(parse(at_limit)) == MAX_VALUES
    error = refused("[" + ",".join(["0"] * (MAX_VALUES + 1)) + "]")
    assert (error.problem, str(error)) == ("values", f"more than {MAX_VALUES} values in one JSON document")
    assert refused("[" + ",".join(["{}"] * MAX_VALUES) + "]").problem == "values"


def test_commas_inside_strings_are_not_values() -> None:
    doc = json.dumps({"text": "," * (MAX_VALUES * 3)})
    assert parse(doc) == json.loads(doc)


def test_a_flood_of_strings_is_refused_before_parsing() -> None:
    assert refused('""' * (MAX_VALUES * 3)).problem == "values"
    assert refused("[" + ",".join(['""'] * (MAX_VALUES + 1)) + "]").problem == "values"


# -- NUL and surrogates -----------------------------------------------------------------------------


def test_nul_in_a_string_is_refused_naming_its_path() -> None:
    error = refused('{"payload": {"items": [{"name": "ok"}, {"name": "a\\u0000b"}]}}')
    assert error.problem == "nul"
    assert error.path == ("payload", "items", 1, "name")
    assert str(error) == "payload.items[1].name: must not contain NUL characters (\\u0000)"
    assert error.slashed_path() == "payload/items/1/name"


def test_nul_in_a_key_is_refused_and_printed_escaped() -> None:
    error = refused('{"data": {"k\\u0000": 1}}')
    assert error.problem == "nul"
    assert error.dotted_path() == "data.k\\u0000"
    assert "\x00" not in str(error)


def test_an_escaped_backslash_before_u0000_is_no_nul() -> None:
    doc = '{"path": "C:\\\\u0000"}'  # the text C:\u0000, no NUL
    assert parse(doc) == {"path": "C:\\u0000"}
    assert refused('{"path": "\\\\\\u0000"}').problem == "nul"  # backslash, then a real NUL


def test_nul_may_be_allowed_for_values_that_are_only_relayed() -> None:
    assert parse('{"a": "x\\u0000"}', allow_nul=True) == {"a": "x\x00"}


def test_a_raw_nul_byte_is_a_syntax_error() -> None:
    assert refused(b'{"a": "x\x00"}').problem == "syntax"
    assert refused(b'{"a": 1}\x00').problem == "syntax"


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ('["\\ud83d"]', (0,)),
        ('{"a": "\\ude00x"}', ("a",)),
        ('{"a": ["\\ud83d\\ud83d\\ude00"]}', ("a", 0)),
        ('{"k\\udbff": 1}', ("k\udbff",)),
        ('["\\ud83d\\\\\\ude00"]', (0,)),  # high, escaped backslash, low: both unpaired
    ],
)
def test_unpaired_surrogates_are_refused_naming_their_path(doc: str, path: tuple[Any, ...]) -> None:
    error = refused(doc)
    assert (error.problem, error.path) == ("surrogate", path)
    str(error).encode("utf-8")  # the message itself is always encodable


def test_paired_surrogates_are_characters() -> None:
    assert parse('["\\ud83d\\ude00", "\\uD83D\\uDE00"]') == ["\U0001f600", "\U0001f600"]


# -- numbers and literals ---------------------------------------------------------------------------


def test_integer_literals_are_bounded_in_length() -> None:
    assert parse("[" + "9" * MAX_INT_DIGITS + ", -" + "9" * MAX_INT_DIGITS + "]")[0] == int("9" * MAX_INT_DIGITS)
    for literal in ("9" * (MAX_INT_DIGITS + 1), "-" + "9" * (MAX_INT_DIGITS + 1), "1" * 5_000):
        error = refused("[" + literal + "]")
        assert (error.problem, str(error)) == ("number", f"integer literal longer than {MAX_INT_DIGITS} digits")


def test_long_digit_runs_in_strings_are_plain_strings() -> None:
    doc = json.dumps({"id": "9" * 5_000, "n": 12})
    assert parse(doc) == json.loads(doc)


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1E+999", "1" + "0" * 400 + ".5", "9" * 250 + "e99"])
def test_floats_that_overflow_are_refused(literal: str) -> None:
    assert refused(f"[{literal}]").problem == "number"


@pytest.mark.parametrize("literal", ["1e300", "-2.5E-300", "1e-999", "0." + "3" * 2_000, "1.5e+10"])
def test_finite_floats_parse_as_json_loads_does(literal: str) -> None:
    assert parse(f"[{literal}]") == json.loads(f"[{literal}]")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", '{"a": NaN}'])
def test_non_json_constants_are_refused(literal: str) -> None:
    assert refused(literal).problem == "syntax"


# -- syntax and encoding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b'{"a": 1', b'{"a": 1}}', b"[1,]", b"\xff\xfe[]", b'"\xc3"', b"\xef\xbb\xbf{}", b"'a'", b"]]]]"],
)
def test_malformed_documents_are_syntax_errors(raw: bytes) -> None:
    assert refused(raw).problem == "syntax"


def test_str_and_bytes_give_the_same_answer() -> None:
    doc = '{"name": "Zoë", "emoji": "😀", "n": [1, 2.5, true, null]}'
    assert parse(doc) == parse(doc.encode()) == json.loads(doc)


async def test_large_documents_are_parsed_off_the_event_loop_with_the_same_answer() -> None:
    doc = json.dumps({"rows": [{"id": i, "text": "x" * 100} for i in range(5_000)]}).encode()
    assert len(doc) > bounded_json.THREAD_ABOVE_BYTES
    assert await bounded_json.parse_async(doc) == json.loads(doc)
    with pytest.raises(JsonError):
        await bounded_json.parse_async(doc + b"]")


# -- seeded random documents ------------------------------------------------------------------------

ALPHABET = ["a", "Z", " ", '"', "\\", "/", "[", "]", "{", "}", ",", ":", "é", "😀", "\n", "\x01", "\u2028"]


def random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.choice(["int", "float", "str", "bool", "null", "list", "dict"] if depth < 12 else ["int", "str"])
    if kind == "int":
        return rng.randint(-(10**30), 10**30)
    if kind == "float":
        return rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-300, 300)
    if kind == "str":
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {random_value(rng, 99): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def check_rules(value: Any) -> None:
    """The reader's documented rules beyond JSON itself, applied to a built value (ValueError)."""
    if isinstance(value, str):
        value.encode("utf-8")  # an unpaired surrogate raises UnicodeEncodeError, a ValueError
        if "\x00" in value:
            raise ValueError("NUL")
    elif isinstance(value, float) and math.isinf(value):
        raise ValueError("overflow")
    elif isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) > MAX_INT_DIGITS:
        raise ValueError("long integer")
    elif isinstance(value, list):
        for item in value:
            check_rules(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_rules(key)
            check_rules(item)


def reference(raw: bytes) -> Any:
    """json.loads plus the reader's extra rules; ValueError where the reader must refuse."""

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    value = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    check_rules(value)
    return value


def test_seeded_random_documents_match_json_loads() -> None:
    rng = random.Random(20261123)
    for _ in range(400):
        value = random_value(rng, 0)
        for raw in (json.dumps(value).encode(), json.dumps(value, ensure_ascii=False, indent=1).encode()):
            assert parse(raw) == json.loads(raw)


def mangle(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randint(0, len(data))
        if op < 0.4 and data:
            del data[min(pos, len(data) - 1)]
        elif op < 0.8:
            data[pos:pos] = rng.choice(
                [b"[", b"]", b"{", b"}", b'"', b"\\", b",", b":", b"\\u0000", b"\\ud800", b"\xff", b"1e999"]
            )
        else:
            data = data[:pos]
    return bytes(data)


def test_seeded_mangled_documents_are_parsed_like_json_loads_or_refused_with_json_error() -> None:
    rng = random.Random(7)
    agreed = refused_count = 0
    for _ in range(3_000):
        raw = mangle(rng, json.dumps(random_value(rng, 0)).encode())
        try:
            expected = reference(raw)
        except (ValueError, RecursionError):
            with pytest.raises(JsonError):
                parse(raw)
            refused_count += 1
        else:
            assert parse(raw) == expected, raw
            agreed += 1
    assert agreed > 100 and refused_count > 100  # both branches were exercised
