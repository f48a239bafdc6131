"""An event's bytes on Kafka are what orjson made of its JSON dump before: consumers, dead
letters and webhook payloads see the same text."""

import uuid

import orjson

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent, utcnow


def samples() -> list[CloudEvent]:
    now = utcnow()
    sale = c.SaleSnapshot(
        id=uuid.uuid4(),
        sale_id="S-Ünï ✓",
        status="pending",
        version=2,
        shop=c.Shop.named("web", "Main street \u2028"),
        location_id="wh-1",
        lines=[
            c.SaleLine(sku="A", quantity=1, properties={"f": 0.1, "g": 1e16, "n": -0.0}),
            c.SaleLine(sku="B", quantity=2**40, properties={"t": True, "s": '\x7f"\\'}),
        ],
        created_at=now,
        updated_at=now,
    )
    odd = CloudEvent(
        source="/orders",
        type=c.SALE_CREATED,
        subject="sale/1",
        tenantid=uuid.uuid4(),
        data={"floats": [1e-7, 5e-324, 1e300, 123456789.123], "none": None, "nested": [{"a": []}]},
    )
    made = c.make_event(
        source="/orders", type=c.SALE_CREATED, tenant_id=uuid.uuid4(), subject="s", data=sale
    )
    return [made, odd]


def test_bytes_are_what_orjson_made_of_the_json_dump() -> None:
    for event in samples():
        assert event.to_bytes() == orjson.dumps(event.model_dump(mode="json"))
        assert CloudEvent.from_bytes(event.to_bytes()) == event
