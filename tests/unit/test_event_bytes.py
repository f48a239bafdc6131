"""An event's bytes on Kafka are what orjson made of its JSON dump before: consumers, dead
letters and webhook payloads see the same text."""

import uuid

import orjson
import pytest

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent, encode, utcnow


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


def _sale_snapshots() -> list[c.SaleStatusChanged]:
    now = utcnow()
    plain = c.SaleStatusChanged(
        id=uuid.uuid4(),
        sale_id="S-1",
        status="pending",
        version=2,
        shop=c.Shop.named("web", "bench"),
        location_id=None,
        lines=[c.SaleLine(sku="A", quantity=1)],
        created_at=now.replace(microsecond=0),
        updated_at=now,
        previous_status="awaiting_stock",
    )
    full = c.SaleStatusChanged(
        id=uuid.uuid4(),
        sale_id="S-Ünï ✓ \u2028",
        status="in_fulfillment",
        version=2**31 - 1,
        shop=c.Shop.named("web", 'Main "street" \\'),
        location_id="wh-1",
        lines=[
            c.SaleLine(sku="A", quantity=1, properties={"f": 0.1, "g": 1e16, "n": -0.0}),
            c.SaleLine(sku="B", quantity=2**40, properties={"t": True, "s": '\x7f"\\'}),
        ],
        customer={"name": "Ø", "nested": [{"a": [], "b": None}], "x": 1e-7},
        shipping_address={"street": "\x00\x1f", "big": 5e-324, "huge": 1e300},
        reservation={"status": "active", "lines": [{"sku": "A", "quantity": 1}], "v": 1.5},
        fulfillments=[{"id": str(uuid.uuid4()), "status": "picking"}],
        created_at=now,
        updated_at=now,
        priority="urgent",
        instructions="Fragile",
        required_dates={"ship_by": now, "deliver_by": None},
        invoice_value={"amount": "10.00", "currency": "NOK"},
        properties={"gift": False, "n": 3, "r": 123456789.123},
        shipped_parts=[{"location_id": "wh-1", "shipped_at": now}],
        previous_status="pending",
        reason="shipping_init",
    )
    return [plain, full]


def test_an_encoded_event_is_the_bytes_of_the_same_cloud_event() -> None:
    tenant = uuid.uuid4()
    for data in _sale_snapshots():
        for time in (utcnow(), utcnow().replace(microsecond=0)):
            event = c.make_event(
                source="/orders",
                type=c.SALE_STATUS_CHANGED,
                tenant_id=tenant,
                subject="sale/1",
                data=data,
            )
            event = event.model_copy(update={"time": time})
            encoded = encode(
                source="/orders",
                type=c.SALE_STATUS_CHANGED,
                tenant_id=tenant,
                subject="sale/1",
                dataversion=c.data_version(c.SALE_STATUS_CHANGED),
                data=data,
                event_id=event.id,
                time=time,
            )
            assert encoded.to_bytes() == event.to_bytes()
            assert (encoded.id, encoded.type) == (event.id, event.type)


def test_encode_event_checks_the_data_as_make_event_does() -> None:
    [data, _] = _sale_snapshots()
    encoded = c.encode_event(
        source="/orders", type=c.SALE_STATUS_CHANGED, tenant_id=uuid.uuid4(), subject="s", data=data
    )
    assert CloudEvent.from_bytes(encoded.to_bytes()).data == data.model_dump(mode="json")
    with pytest.raises(TypeError):
        c.encode_event(
            source="/orders",
            type=c.SALE_CREATED,
            tenant_id=uuid.uuid4(),
            subject="s",
            data=c.StockLow.model_construct(),
        )
    with pytest.raises(ValueError, match="unknown event type"):
        c.encode_event(
            source="/orders", type="no.such", tenant_id=uuid.uuid4(), subject="s", data=data
        )
