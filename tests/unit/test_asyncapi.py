"""The AsyncAPI document describes every event the platform publishes, as it is published."""

import uuid

import pytest
from pydantic import ValidationError

from fulfilkit import contracts as c
from fulfilkit.asyncapi import envelope_model, events_document
from fulfilkit.events import utcnow


def test_every_event_type_is_a_channel_on_its_topic_with_its_key():
    document = events_document("kafka-1:9092,kafka-2:9092")
    assert document["asyncapi"].startswith("3.")
    assert set(document["channels"]) == set(c.EVENT_TYPES)
    for event_type, channel in document["channels"].items():
        assert channel["address"] == c.TOPIC_OF_TYPE[event_type]
        assert c.KEY_OF_TYPE[event_type] in channel["description"]
    assert "kafka-1:9092" in str(document["servers"])


def test_each_envelope_fixes_its_type_and_types_its_data():
    schemas = events_document("localhost:9092")["components"]["schemas"]
    envelope = schemas["SaleStatusChangedEvent"]
    assert envelope["properties"]["type"]["const"] == c.SALE_STATUS_CHANGED
    assert envelope["properties"]["data"]["$ref"].endswith("/SaleStatusChanged")
    assert {"previous_status", "status", "lines"} <= set(schemas["SaleStatusChanged"]["required"])
    assert {"tenantid", "data"} <= set(envelope["required"])
    assert schemas["StockChangedEvent"]["properties"]["data"]["$ref"].endswith("/StockChanged")


def test_a_published_event_matches_its_documented_envelope():
    now = utcnow()
    snapshot = c.SaleSnapshot(
        id=uuid.uuid4(),
        sale_id="S-1",
        status="awaiting_stock",
        version=1,
        shop=c.Shop(channel="web", shop_name="s"),
        location_id="wh-1",
        lines=[c.SaleLine(sku="A", quantity=1)],
        created_at=now,
        updated_at=now,
    )
    event = c.make_event(
        source="/orders",
        type=c.SALE_CREATED,
        tenant_id=uuid.uuid4(),
        subject=f"sale/{snapshot.id}",
        data=snapshot,
    )
    parsed = envelope_model(c.SALE_CREATED).model_validate_json(event.to_bytes())
    assert parsed.data == snapshot  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match=r"Input should be 'sale\.status_changed'"):
        envelope_model(c.SALE_STATUS_CHANGED).model_validate_json(event.to_bytes())


def test_an_event_cannot_carry_another_types_data():
    reservation_failed = c.ReservationFailed(
        sale=uuid.uuid4(), sale_id="S-1", location_id="wh-1", shortfalls=[]
    )
    with pytest.raises(TypeError, match=r"sale\.created carries SaleSnapshot"):
        c.make_event(
            source="/x",
            type=c.SALE_CREATED,
            tenant_id=uuid.uuid4(),
            subject="s",
            data=reservation_failed,
        )
