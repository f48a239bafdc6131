"""Field types and the base model every service's request bodies and query parameters are
built from, so that each bound is declared once and shows in the OpenAPI document
(docs/api-limits.md)."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
)

from fulfilkit.bounds import FREE_FORM, JsonBounds, pointer, text_error, violations


class StrictModel(BaseModel):
    """A request body: unknown fields are refused, no NaN or infinity. Numbers and booleans
    are typed with `Int` and `Bool` below (a model-wide `strict` would also refuse the JSON
    strings that carry UUIDs and dates)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# `"5"`, `1.0` and `true` are not integers, nor `1` and `"true"` booleans.
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]


def _storable(text: str) -> str:
    if (error := text_error(text)) is not None:
        raise ValueError(error)
    return text


# What the OpenAPI says of text: no NUL (JSON Schema strings are Unicode: no surrogates).
STORABLE_PATTERN = "^[^\\u0000]*$"

# A string PostgreSQL can store (no NUL, valid Unicode); bound its length where it is used:
# `Annotated[Text, Field(max_length=200)]`.
Text = Annotated[
    str, AfterValidator(_storable), Field(json_schema_extra={"pattern": STORABLE_PATTERN})
]


CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
CODE_MAX_LENGTH = 64
_CODE = re.compile(CODE_PATTERN)

# A client's identifier (sale_id, sku, location_id): ASCII, no spaces, safe in a URL path.
Code = Annotated[str, Field(min_length=1, max_length=CODE_MAX_LENGTH, pattern=CODE_PATTERN)]


def code_error(value: str) -> str | None:
    """Why `value` is not a `Code`, or None: for batches that report each item on its own."""
    if 1 <= len(value) <= CODE_MAX_LENGTH and _CODE.match(value):
        return None
    return (
        f"must be 1-{CODE_MAX_LENGTH} characters: ASCII letters, digits, '.', '_' or '-',"
        " starting with a letter or digit"
    )


def _bounded(bounds: JsonBounds) -> AfterValidator:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        if found := violations(value, bounds, limit=1):
            path, error = found[0]
            raise ValueError(f"at {pointer(path)}: {error}" if path else error)
        return value

    return AfterValidator(check)


def _free_form_doc(bounds: JsonBounds) -> str:
    return (
        f"Free-form JSON object: at most {bounds.max_bytes} bytes as JSON,"
        f" {bounds.max_depth} levels deep, {bounds.max_entries} keys or items per object"
        f" or array, keys of at most {bounds.max_key_length} and text of at most"
        f" {bounds.max_string_length} characters, integers within ±{bounds.max_int} and"
        f" other numbers within ±{bounds.max_float:g}."
    )


def _free_form_schema(bounds: JsonBounds) -> dict[str, Any]:
    """The JSON Schema of a free-form object within `bounds`, stated for its own keys and
    values; nested objects and arrays only by their size (a schema of every level made
    generating examples from the document too slow). Never narrower than what is accepted."""
    value = {
        "anyOf": [
            {"type": "string", "maxLength": bounds.max_string_length, "pattern": STORABLE_PATTERN},
            {"type": "integer", "minimum": -bounds.max_int, "maximum": bounds.max_int},
            {"type": "number", "minimum": -bounds.max_float, "maximum": bounds.max_float},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "object", "maxProperties": bounds.max_entries},
            {"type": "array", "maxItems": bounds.max_entries},
        ]
    }
    return {
        "type": "object",
        "maxProperties": bounds.max_entries,
        "propertyNames": {"maxLength": bounds.max_key_length, "pattern": STORABLE_PATTERN},
        "additionalProperties": value,
    }


# `customer`, `shipping_address`, a location's `address`: anything the client wants to keep
# with the entity, within bounds that keep every event carrying it small.
JsonObject = Annotated[
    dict[str, Any],
    _bounded(FREE_FORM),
    WithJsonSchema({**_free_form_schema(FREE_FORM), "description": _free_form_doc(FREE_FORM)}),
]


# Dates: converted to UTC by the database driver, so both ends of Python's range are
# refused where the offset would carry them over (9999-12-31T23:59:59-14:00).
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"must be between {EARLIEST.date()} and {LATEST.date()} in UTC")
    return value


def _written_as_date(value: Any) -> Any:
    # pydantic also reads a number (or a string of digits) as seconds since 1970: refused,
    # so `created_to=0.5` is an error rather than a moment in 1970
    if isinstance(value, datetime) or (
        isinstance(value, str) and re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)
    ):
        return value
    raise ValueError("must be an ISO 8601 date and time, such as 2026-01-31T12:00:00Z")


Timestamp = Annotated[datetime, BeforeValidator(_written_as_date), AfterValidator(_in_range)]
AwareTimestamp = Annotated[
    AwareDatetime, BeforeValidator(_written_as_date), AfterValidator(_in_range)
]


def _decimal_digits(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,19}", value):
        raise ValueError("must be a whole number written in decimal digits")
    return value


# An integer in a query string: digits only (`1.0`, `1e3`, ` 5` are refused). Bounds go
# before it, `Annotated[int, Field(le=10), DecimalDigits]`, or the OpenAPI loses them.
DecimalDigits = BeforeValidator(_decimal_digits)
QueryInt = Annotated[int, DecimalDigits]
