"""Events as consumers receive them: the envelope with `data` already in its contract model.

`decode_event` parses a record's bytes once, by one discriminated union over every event
type, straight into `Event[<its data model>]`; `bench/event_decoding.py` measures this
against parsing the envelope and then its data (docs/benchmarks.md has the figures).

A consumer skips the records of its topics whose type it does not handle. `type_hint` reads
a record's type from its text without parsing it; when that type is one the consumer skips,
`read_envelope` parses the JSON (orjson, a third of the cost of validating the event) to be
sure of the type and source, and the event is never validated. Every other record is
decoded by `decode_event`, as before.

A consumer can also ask, from the envelopes alone (`Envelope.tenantid` and `type`), which
events of a batch it wants at all (`fulfilkit.inbox.Screening`); only those are validated.
"""

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, Union
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from fulfilkit.contracts import DATA_MODEL_OF_TYPE, EARLIER_DATA_MODELS

D = TypeVar("D", bound=BaseModel)


class Event(BaseModel, Generic[D]):
    """A received CloudEvent whose `data` is the contract model of its `type`."""

    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: UUID
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: str = "application/json"
    dataversion: str = "1"
    tenantid: UUID
    data: D


def _data_model(event_type: str) -> Any:
    """The model of `event_type`'s data: its current version's, or else (for records published
    before a change) an earlier version's, tried in that order."""
    earlier = [m for (t, _), m in EARLIER_DATA_MODELS.items() if t == event_type]
    if not earlier:
        return DATA_MODEL_OF_TYPE[event_type]
    return Annotated[
        Union[(DATA_MODEL_OF_TYPE[event_type], *earlier)],
        Field(union_mode="left_to_right"),
    ]


def _typed(event_type: str) -> type[Event[Any]]:
    name = "Event_" + event_type.replace(".", "_")
    return create_model(
        name,
        __base__=Event[Any],
        type=(Literal[event_type], ...),  # type: ignore[valid-type]
        data=(_data_model(event_type), ...),
    )


_MEMBERS = tuple(_typed(t) for t in DATA_MODEL_OF_TYPE)
_DECODER: TypeAdapter[Event[Any]] = TypeAdapter(
    Annotated[Union[_MEMBERS], Field(discriminator="type")]  # noqa: UP007
)


def decode_event(raw: bytes) -> Event[Any]:
    """Parses a record's value; raises `pydantic.ValidationError` when it is not a known
    event type carrying valid data for a version of that type still read."""
    return _DECODER.validate_json(raw)


# The first `"type": "<text without escapes>"` of a record's value: in an event as the
# platform writes it, the envelope's (its fields come before `data`). Only a hint.
_FIRST_TYPE = re.compile(rb'"type"\s*:\s*"([^"\\]*)"')


def type_hint(raw: bytes) -> str | None:
    """What a record's type probably is, read without parsing it: cheap enough to decide
    whether a record is worth parsing at all, but only a hint (the first `"type"` in the
    text could be one inside `data`); `read_envelope` says for sure."""
    found = _FIRST_TYPE.search(raw)
    return found.group(1).decode("utf-8", "replace") if found else None


class Envelope:
    """A record's value parsed as JSON (not validated), with the fields a consumer reads to
    know that it does not want an event: `type` and `source`, both text, and `tenantid` and
    `id` (None when missing or no UUID)."""

    __slots__ = ("id", "source", "tenantid", "type")

    def __init__(
        self,
        event_type: str,
        source: str,
        tenantid: UUID | None = None,
        event_id: UUID | None = None,
    ) -> None:
        self.type = event_type
        self.source = source
        self.tenantid = tenantid
        self.id = event_id


def read_envelope(raw: bytes, *, ids: bool = False) -> Envelope | None:
    """The type and source of a record's value (and with `ids` its tenant and id), or None
    when it is no JSON object with a type and a source in text (`decode_event` then says
    what is wrong with it)."""
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(fields, dict):
        return None
    event_type, source = fields.get("type"), fields.get("source")
    if not isinstance(event_type, str) or not isinstance(source, str):
        return None
    if not ids:
        return Envelope(event_type, source)
    return Envelope(event_type, source, _uuid(fields.get("tenantid")), _uuid(fields.get("id")))


def _uuid(value: Any) -> UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None
