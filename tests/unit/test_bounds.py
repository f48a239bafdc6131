"""The shared bounds on client JSON, the field types built on them, and If-Match."""

from datetime import datetime
from typing import Annotated, Any

import orjson
import pytest
from pydantic import Field, TypeAdapter, ValidationError

from fulfilkit.bounds import BODY, FREE_FORM, INT64_MAX, JS_SAFE_INT, pointer, violations
from fulfilkit.http.preconditions import MAX_VERSION, expected_version
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import decode_json, may_hold_unstorable_text
from fulfilkit.models import (
    Bool,
    Code,
    Int,
    JsonObject,
    QueryInt,
    StrictModel,
    Text,
    Timestamp,
    code_error,
)


def errors_of(value: Any, bounds=FREE_FORM) -> list[tuple[str, str]]:
    return [(pointer(path), error) for path, error in violations(value, bounds)]


def test_pointers_escape_slashes_and_tildes():
    assert pointer(()) == ""
    assert pointer(("a/b", 0, "c~d")) == "/a~1b/0/c~0d"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": "x\x00"}, [("/a", "must not contain NUL characters")]),
        ({"a": ["ok", "\ud800"]}, [("/a/1", "must be valid Unicode (no lone surrogates)")]),
        ({"a": {"\x00": 1}}, [("/a", "key must not contain NUL characters")]),
        ({"n": 2**63}, [("/n", f"integers must be within ±{INT64_MAX}")]),
        ({"n": float("nan")}, [("/n", "numbers must be finite and within ±1e+300")]),
        ({"ok": [1, -(2**63) + 1, 1.5, True, None, "é😀"]}, []),
    ],
)
def test_every_body_refuses_what_cannot_be_stored(value, expected):
    assert errors_of(value, BODY) == expected


def test_every_body_is_at_most_32_deep_however_deep_it_is():
    deep: Any = []
    for _ in range(100_000):  # far below the recursion limit if walked recursively
        deep = [deep]
    assert errors_of({"a": deep}, BODY) == [("/a" + "/0" * 31, "nested deeper than 32 levels")]
    assert errors_of([[[]]], BODY) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": {"b": {"c": {"d": {"e": 1}}}}}, []),
        ({"a": {"b": {"c": {"d": {"e": {}}}}}}, [("/a/b/c/d/e", "nested deeper than 5 levels")]),
        ({f"k{i}": i for i in range(64)}, []),
        ({f"k{i}": i for i in range(65)}, [("", "at most 64 keys")]),
        ({"a": list(range(65))}, [("/a", "at most 64 items")]),
        ({"a": "x" * 1000, "k" * 100: 1}, []),
        ({"a": "x" * 1001}, [("/a", "text must be at most 1000 characters")]),
        ({"k" * 101: 1}, [("", "keys must be at most 100 characters")]),
        ({"n": JS_SAFE_INT, "m": -JS_SAFE_INT}, []),
        ({"n": JS_SAFE_INT + 1}, [("/n", f"integers must be within ±{JS_SAFE_INT}")]),
        ({"n": 1e15, "m": -1e15, "tiny": 1e-300}, []),
        ({"n": 1.5e15}, [("/n", "numbers must be finite and within ±1e+15")]),
        ({"n": float("inf")}, [("/n", "numbers must be finite and within ±1e+15")]),
    ],
)
def test_free_form_objects_are_bounded_in_depth_count_text_and_numbers(value, expected):
    assert errors_of(value, FREE_FORM) == expected


def test_free_form_objects_are_bounded_in_encoded_bytes():
    adapter = TypeAdapter(JsonObject)
    just_fits = {"k": "x" * (FREE_FORM.max_bytes - len('{"k":""}'))}
    assert len(orjson.dumps(just_fits)) == FREE_FORM.max_bytes
    with pytest.raises(ValidationError, match="at most 1000 characters"):
        adapter.validate_python(just_fits)  # too long a text, before too many bytes
    parts = {f"k{i:02}": "x" * 1000 for i in range(16)}
    parts["last"] = "x" * (FREE_FORM.max_bytes - len(orjson.dumps(parts)) - len(',"last":""'))
    assert len(orjson.dumps(parts)) == FREE_FORM.max_bytes
    assert adapter.validate_python(parts) == parts
    parts["last"] += "x"
    with pytest.raises(ValidationError, match="16385 bytes as JSON; at most 16384"):
        adapter.validate_python(parts)


def test_bytes_are_counted_as_the_events_write_them():
    # `1e5` is 3 bytes in a request and 8 (`100000.0`) in every event that carries it
    request = '{"m":[' + ",".join(["[" + ",".join(["1e5"] * 60) + "]"] * 50) + "]}"
    numbers = decode_json(request.encode())
    written = len(orjson.dumps(numbers))
    assert len(request) < FREE_FORM.max_bytes < written
    assert errors_of(numbers) == [("", f"{written} bytes as JSON; at most 16384")]


class Body(StrictModel):
    count: Int = 0
    flag: Bool = False
    code: Code = "a"
    note: Annotated[Text, Field(max_length=5)] = ""
    when: Timestamp | None = None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("count", "5"),
        ("count", 1.0),
        ("count", True),
        ("flag", 1),
        ("flag", "true"),
        ("code", "a b"),
        ("code", "é"),
        ("code", "x" * 65),
        ("note", "a\x00"),
        ("note", "\udc00"),
        ("note", "x" * 6),
        ("when", "9999-12-31T23:59:59-14:00"),
        ("when", "0001-01-01T00:00+01:00"),
        ("extra", 1),
    ],
)
def test_request_fields_are_strict(field, value):
    with pytest.raises(ValidationError) as refused:
        Body.model_validate({field: value})
    assert [e["loc"] for e in refused.value.errors()] == [(field,)]


def test_request_fields_take_what_they_should():
    when = "9999-12-29T09:59:59-14:00"
    body = Body.model_validate(
        {"count": 5, "flag": True, "code": "A-1.b_2", "note": "é😀", "when": when}
    )
    assert (body.count, body.flag, body.when) == (5, True, datetime.fromisoformat(when))


def test_code_errors_match_the_code_type():
    adapter = TypeAdapter(Code)
    for value in ["a", "A-1.b_2", "x" * 64, "", " a", "a b", "é", "x" * 65, "-a", "a/b"]:
        try:
            adapter.validate_python(value)
            valid = True
        except ValidationError:
            valid = False
        assert (code_error(value) is None) == valid, value


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("1000000", 1_000_000)])
def test_query_integers_are_decimal_digits(text, number):
    assert TypeAdapter(QueryInt).validate_python(text) == number


@pytest.mark.parametrize("text", ["1.0", "1e3", " 5", "+5", "-0", "0x10", "\u0661", "1" * 20])
def test_query_integers_refuse_anything_else(text):
    with pytest.raises(ValidationError, match="whole number written in decimal digits"):
        TypeAdapter(QueryInt).validate_python(text)


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (None, None),
        ("*", None),
        (" * ", None),
        ('"3"', 3),
        ("3", 3),
        ('W/"3"', 3),
        (f'"{MAX_VERSION}"', MAX_VERSION),
    ],
)
def test_if_match_names_a_version(header, version):
    assert expected_version(header) == version


@pytest.mark.parametrize(
    "header",
    [
        "²",
        '"²"',
        "\u0661",
        "latest",
        '"0"',
        f'"{MAX_VERSION + 1}"',
        "9" * 5000,
        '"1", "2"',
        '"3',
        "W/",
        "",
    ],
)
def test_if_match_refuses_anything_else_as_a_client_error(header):
    with pytest.raises(Problem) as refused:
        expected_version(header)
    assert refused.value.status == 400 and refused.value.code == "invalid_request"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": 1', "not valid JSON"),
        (b'{"a": "\xff"}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_bodies_that_are_not_strict_json_are_refused(raw, reason):
    with pytest.raises(Problem) as refused:
        decode_json(raw)
    assert refused.value.code == "invalid_request" and reason in refused.value.detail


def test_strict_json_keeps_what_json_allows():
    assert decode_json(b'{"a": [1, 2.5, "\\u00e9\\ud83d\\ude00", null, true]}') == {
        "a": [1, 2.5, "é😀", None, True]
    }


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": "\\u0000"}',
        b'{"a": "\\ud800"}',
        b'{"\\udfff": 1}',
        b'["\xed\xa0\x80"]',
        '["\\ud800"]'.encode("utf-16"),
        '{"a": "\\u0000"}'.encode("utf-32"),
    ],
)
def test_every_way_to_unstorable_text_is_looked_at(raw):
    assert may_hold_unstorable_text(raw)
    value = decode_json(raw)
    assert violations(value, BODY, text=True) != []


@pytest.mark.parametrize("raw", [b'{"a": "plain", "b": [1, 2.5]}', '{"é": "😀"}'.encode()])
def test_text_without_escapes_needs_no_look(raw):
    assert not may_hold_unstorable_text(raw)
    assert violations(decode_json(raw), BODY, text=False) == []
