"""Bounds on JSON taken from clients (docs/api-limits.md): what any text may contain, how
deep and large a body may be, and the tighter bounds on free-form objects (a sale's
`customer`, an address) that end up inside events."""

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
JS_SAFE_INT = 2**53 - 1

# A surrogate code point in a Python str is always a lone one: a valid pair in JSON
# (`"\ud83d\ude00"`) decodes to the one character it encodes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

Path = tuple[str | int, ...]


def text_error(text: str) -> str | None:
    """Why PostgreSQL (and UTF-8) cannot take this text, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL characters"
    return "must be valid Unicode (no lone surrogates)"


@dataclass(frozen=True)
class JsonBounds:
    max_depth: int  # the outermost object or array is depth 1
    max_int: int  # in absolute value
    max_float: float  # in absolute value; never NaN or infinite
    max_entries: int | None = None  # keys of one object, items of one array
    max_string_length: int | None = None  # in characters
    max_key_length: int | None = None
    max_bytes: int | None = None  # the whole value as the events write it (orjson)


# Every JSON request body of every service.
BODY = JsonBounds(max_depth=32, max_int=INT64_MAX, max_float=1e300)

# A free-form object: `customer`, `shipping_address`, a location's `address`. Numbers stay
# exact in JavaScript and are written without an exponent, so a value has the same size in
# the request, the database (jsonb) and every event that carries it.
FREE_FORM = JsonBounds(
    max_depth=5,
    max_int=JS_SAFE_INT,
    max_float=1e15,
    max_entries=64,
    max_string_length=1000,
    max_key_length=100,
    max_bytes=16 * 1024,
)


def pointer(path: Path) -> str:
    """RFC 6901 JSON pointer of a path inside a value ("" for the value itself)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _children(value: Any) -> Iterator[tuple[str | int, Any]]:
    return iter(value.items()) if isinstance(value, dict) else enumerate(value)


def _scalar_error(value: Any, bounds: JsonBounds) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if abs(value) > bounds.max_int:
            return f"integers must be within ±{bounds.max_int}"
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > bounds.max_float:
            return f"numbers must be finite and within ±{bounds.max_float:g}"
        return None
    if isinstance(value, str):
        if (error := text_error(value)) is not None:
            return error
        if bounds.max_string_length is not None and len(value) > bounds.max_string_length:
            return f"text must be at most {bounds.max_string_length} characters"
    return None


def _container_error(value: dict | list, depth: int, bounds: JsonBounds) -> str | None:
    if depth > bounds.max_depth:
        return f"nested deeper than {bounds.max_depth} levels"
    if bounds.max_entries is not None and len(value) > bounds.max_entries:
        what = "keys" if isinstance(value, dict) else "items"
        return f"at most {bounds.max_entries} {what}"
    return None


def _key_error(key: str, bounds: JsonBounds) -> str | None:
    if (error := text_error(key)) is not None:
        return f"key {error}"
    if bounds.max_key_length is not None and len(key) > bounds.max_key_length:
        return f"keys must be at most {bounds.max_key_length} characters"
    return None


def _fits(value: Any, bounds: JsonBounds, text: bool) -> bool:
    """Whether `value` is within `bounds` (but its size), quickly: every request body goes
    through here, and only one that fails is walked again to say where."""
    max_depth, max_entries = bounds.max_depth, bounds.max_entries
    max_int, max_float = bounds.max_int, bounds.max_float
    max_text, max_key = bounds.max_string_length, bounds.max_key_length
    unstorable = _UNSTORABLE.search
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    if not stack:
        return _scalar_error(value, bounds) is None
    while stack:
        item, depth = stack.pop()
        if depth > max_depth or (max_entries is not None and len(item) > max_entries):
            return False
        if type(item) is dict:
            if text and any(
                unstorable(k) or (max_key is not None and len(k) > max_key) for k in item
            ):
                return False
            children = item.values()
        else:
            children = item
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is str:
                if text and (unstorable(child) or (max_text is not None and len(child) > max_text)):
                    return False
            elif kind is int:
                if not -max_int <= child <= max_int:
                    return False
            elif kind is float and not -max_float <= child <= max_float:  # NaN fails too
                return False
    return True


def violations(
    value: Any, bounds: JsonBounds, limit: int = 10, *, text: bool = True
) -> list[tuple[Path, str]]:
    """Where `value` (as decoded from JSON) breaks `bounds`, and how; at most `limit`.

    `text=False` skips the checks of text, for a caller that knows there can be nothing
    wrong with it (see `fulfilkit.http.strict_json`). Walks without recursion, and never
    below `max_depth`, so any depth is safe to check.
    """
    if _fits(value, bounds, text):
        return _size_violations(value, bounds)
    found: list[tuple[Path, str]] = []
    stack: list[tuple[Any, Path, int]] = [(value, (), 0)]
    while stack and len(found) < limit:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if (error := _container_error(item, depth + 1, bounds)) is not None:
                found.append((path, error))
                continue
            children = list(_children(item))
            for key, child in reversed(children):
                if isinstance(key, str) and (error := _key_error(key, bounds)) is not None:
                    # at the object: a key that cannot be stored cannot be sent back either
                    found.append((path, error))
                    continue
                stack.append((child, (*path, key), depth + 1))
        elif (error := _scalar_error(item, bounds)) is not None:
            found.append((path, error))
    return found[:limit] or _size_violations(value, bounds)


def _size_violations(value: Any, bounds: JsonBounds) -> list[tuple[Path, str]]:
    if bounds.max_bytes is None:
        return []
    size = len(orjson.dumps(value))
    if size <= bounds.max_bytes:
        return []
    return [((), f"{size} bytes as JSON; at most {bounds.max_bytes}")]
