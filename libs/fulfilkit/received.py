"""Events as consumers receive them: the envelope with `data` already in its contract model.

The bytes of a record are parsed once, by one discriminated union over every event type,
straight into `Event[<its data model>]`; `bench/event_decoding.py` measures this against
parsing the envelope and then its data (docs/benchmarks.md has the figures).
"""

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, Union
from uuid import UUID

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
