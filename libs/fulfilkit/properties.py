"""Custom properties as the platform validates them everywhere (a sale's and its lines' in
`orders.details`, an inbound order's in stock): string keys, scalar values (text, number,
boolean), bounded in count and size."""

import math
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, WithJsonSchema

from fulfilkit.models import STORABLE_PATTERN, Text

MAX_PROPERTY_KEY = 64
MAX_PROPERTY_TEXT = 500
# integers and other numbers alike: exact in JavaScript, written without an exponent
MAX_PROPERTY_NUMBER = 10**15


def _scalar(value: Any) -> Any:
    """A property's value: text, a number or a boolean (no null, object or array)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > MAX_PROPERTY_NUMBER:
            raise ValueError("numbers must be finite and within ±1e15")
        return value
    if isinstance(value, str):
        if len(value) > MAX_PROPERTY_TEXT:
            raise ValueError(f"text must be at most {MAX_PROPERTY_TEXT} characters")
        return value
    raise ValueError("must be text, a number or a boolean")


def _keys(given: dict[str, Any]) -> dict[str, Any]:
    """Keys of 1-MAX_PROPERTY_KEY characters; a bad key is reported at its object, with the
    key in the message (as free-form objects' keys are)."""
    for key in given:
        if not 1 <= len(key) <= MAX_PROPERTY_KEY:
            raise ValueError(f"key {key[:80]!r}: keys must be 1-{MAX_PROPERTY_KEY} characters")
    return given


def _fits(max_bytes: int) -> AfterValidator:
    def check(given: dict[str, Any]) -> dict[str, Any]:
        if (size := len(orjson.dumps(given))) > max_bytes:
            raise ValueError(f"takes {size} bytes as JSON; at most {max_bytes}")
        return given

    return AfterValidator(check)


def _too_many(max_entries: int) -> AfterValidator:
    def check(given: dict[str, Any]) -> dict[str, Any]:
        if len(given) > max_entries:
            raise ValueError(f"at most {max_entries} properties, not {len(given)}")
        return given

    return AfterValidator(check)


def properties(max_entries: int, max_bytes: int | None = None) -> Any:
    """The type of custom properties, and its JSON Schema (stated by hand: pydantic would
    write a dict's key bounds as `patternProperties` and its count as `maxLength`)."""
    description = (
        f"At most {max_entries} custom properties: keys of 1-{MAX_PROPERTY_KEY} characters,"
        f" values text (at most {MAX_PROPERTY_TEXT} characters), numbers within"
        " ±1e15 or booleans" + (f"; at most {max_bytes} bytes as JSON." if max_bytes else ".")
    )
    schema = {
        "type": "object",
        "description": description,
        "maxProperties": max_entries,
        "propertyNames": {
            "minLength": 1,
            "maxLength": MAX_PROPERTY_KEY,
            "pattern": STORABLE_PATTERN,
        },
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": MAX_PROPERTY_TEXT, "pattern": STORABLE_PATTERN},
                {
                    "type": "number",
                    "minimum": -MAX_PROPERTY_NUMBER,
                    "maximum": MAX_PROPERTY_NUMBER,
                },
                {"type": "boolean"},
            ]
        },
    }
    return Annotated[
        dict[Text, Annotated[Any, AfterValidator(_scalar)]],
        _too_many(max_entries),
        AfterValidator(_keys),
        *([_fits(max_bytes)] if max_bytes else []),
        WithJsonSchema(schema),
    ]
