"""The CloudEvents 1.0 envelope, in Kafka structured mode: the whole event is the JSON value."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field

CONTENT_TYPE = "application/cloudevents+json"


def utcnow() -> datetime:
    return datetime.now(UTC)


class CloudEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: UUID = Field(default_factory=uuid4)
    source: str
    type: str
    time: datetime = Field(default_factory=utcnow)
    subject: str
    datacontenttype: str = "application/json"
    dataversion: str = "1"
    tenantid: UUID
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        # pydantic's own JSON in one pass: the same bytes as orjson over `model_dump(mode=
        # "json")` (tests/unit/test_event_bytes.py), at about half the cost
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "CloudEvent":
        return cls.model_validate_json(raw)


@dataclass(frozen=True, slots=True)
class Encoded:
    """An event already in its wire form: the bytes `CloudEvent.to_bytes()` gives for the
    same event, with the id and type the outbox keeps beside them."""

    id: UUID
    type: str
    payload: bytes

    def to_bytes(self) -> bytes:
        return self.payload


def encode(
    *,
    source: str,
    type: str,
    tenant_id: UUID,
    subject: str,
    dataversion: str,
    data: BaseModel,
    event_id: UUID | None = None,
    time: datetime | None = None,
) -> Encoded:
    """The event `CloudEvent(..., data=data.model_dump(mode="json")).to_bytes()` gives, without
    building that `CloudEvent`: the envelope's own fields (plain text, a UUID and the time,
    which orjson writes as pydantic's JSON mode does) by orjson, and `data`, the last field,
    by its model's own serializer, spliced in. Dumping `data` to Python and writing it again
    as an untyped dict was most of what an event cost (`tests/unit/test_event_bytes.py` holds
    the two to the same bytes)."""
    event_id = event_id or uuid4()
    head = orjson.dumps(
        {
            "specversion": "1.0",
            "id": str(event_id),
            "source": source,
            "type": type,
            "time": time or utcnow(),
            "subject": subject,
            "datacontenttype": "application/json",
            "dataversion": dataversion,
            "tenantid": str(tenant_id),
            "data": None,
        },
        option=orjson.OPT_UTC_Z,
    )
    # `head` ends `"data":null}`: the data's own JSON goes where its null is
    return Encoded(event_id, type, head[:-5] + data.model_dump_json().encode() + b"}")
