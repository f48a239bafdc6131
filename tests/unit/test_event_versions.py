"""Event data versions: each type publishes at its `dataversion`, the decoder still reads
the earlier versions it keeps, and the AsyncAPI document fixes each type's version."""

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from fulfilkit import contracts as c
from fulfilkit.asyncapi import events_document
from fulfilkit.received import decode_event

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def fulfillment(status: str = "waiting_for_picking") -> c.FulfillmentSnapshot:
    return c.FulfillmentSnapshot(
        id=uuid.uuid4(),
        sale=c.FulfillmentSale(
            id=uuid.uuid4(),
            shop=c.FulfillmentShop(
                id=c.shop_id("TikTok", "Ripple Shop"), channel="TikTok", shop_name="Ripple Shop"
            ),
            sale_id="S-1",
            date_created=NOW,
            status="in_fulfillment",
        ),
        location=c.FulfillmentLocation(name="Warehouse 1", location_id="warehouse-1"),
        fulfillment_id="F-1",
        status=status,  # type: ignore[arg-type]
        shipping_provider=c.ShippingProvider(
            name="Fulfil Post", shipping_provider_id="fulfil-post"
        ),
        tracking_number="FP00010000016",
        date_created=NOW,
        is_bulky=False,
        sale_id="S-1",
        version=1,
    )


def record(event_type: str, data: c.BaseModel) -> c.CloudEvent:
    return c.make_event(
        source="/fulfilment", type=event_type, tenant_id=uuid.uuid4(), subject="s", data=data
    )


def test_a_shop_id_is_derived_from_its_channel_and_name_alone():
    ripple = c.shop_id("TikTok", "Ripple Shop")
    assert ripple == uuid.uuid5(c.SHOP_ID_NAMESPACE, "TikTok\nRipple Shop")
    assert ripple == c.shop_id("TikTok", "Ripple Shop")
    assert len({ripple, c.shop_id("tiktok", "Ripple Shop"), c.shop_id("TikTok", "Ripple")}) == 3
    # the separator keeps names apart that only concatenate alike
    assert c.shop_id("ab", "c") != c.shop_id("a", "bc")
    assert c.Shop.named("web", "Main") == c.Shop(
        id=c.shop_id("web", "Main"), channel="web", shop_name="Main"
    )


def test_fulfillment_sale_and_failure_events_are_published_at_version_2_and_others_at_1():
    assert record(c.FULFILLMENT_CREATED, fulfillment()).dataversion == "2"
    changed = c.FulfillmentStatusChanged(
        **dict(fulfillment("picking")), previous_status="waiting_for_picking"
    )
    assert record(c.FULFILLMENT_STATUS_CHANGED, changed).dataversion == "2"
    failed = c.ReservationFailed(sale=uuid.uuid4(), sale_id="S", location_id="x", shortfalls=[])
    assert record(c.STOCK_RESERVATION_FAILED, failed).dataversion == "2"
    reserved = c.ReservationSnapshot(
        id=uuid.uuid4(),
        sale=uuid.uuid4(),
        sale_id="S",
        location_id="x",
        status="active",
        lines=[],
        version=1,
        updated_at=NOW,
    )
    assert record(c.STOCK_RESERVED, reserved).dataversion == "1"


def test_version_2_sale_and_failure_models_read_version_1_records_as_they_are():
    """Version 2 only let `location_id` be null (a routed sale; a failure with nowhere to
    wait): a version 1 record, which always had a string, reads into the same model."""
    sale = {
        "id": str(uuid.uuid4()),
        "sale_id": "S-1",
        "status": "awaiting_stock",
        "version": 1,
        "shop": {"channel": "web", "shop_name": "Main"},
        "location_id": "WH-1",
        "lines": [{"sku": "A", "quantity": 1}],
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }
    event = record(c.SALE_CREATED, c.SaleSnapshot.model_validate(sale))
    v1 = event.model_copy(update={"dataversion": "1"})
    received = decode_event(v1.to_bytes())
    assert received.dataversion == "1"
    assert received.data.location_id == "WH-1" and received.data.allow_split is True
    routed = decode_event(
        record(
            c.SALE_CREATED, c.SaleSnapshot.model_validate(sale | {"location_id": None})
        ).to_bytes()
    )
    assert routed.dataversion == "2" and routed.data.location_id is None


def test_a_version_2_record_is_read_into_the_nested_model():
    data = fulfillment()
    received = decode_event(record(c.FULFILLMENT_CREATED, data).to_bytes())
    assert received.dataversion == "2"
    assert received.data == data
    assert isinstance(received.data, c.FulfillmentSnapshot)
    assert c.sale_of(received.data) == data.sale.id


def test_a_version_1_record_is_still_read_with_its_own_model():
    sale = uuid.uuid4()
    flat = {
        "id": str(uuid.uuid4()),
        "fulfillment_id": "F-1",
        "sale": str(sale),
        "sale_id": "S-1",
        "location": "warehouse-1",
        "status": "picking",
        "previous_status": "waiting_for_picking",
        "shipping_provider": "fulfil-post",
        "tracking_number": "FP1",
        "is_bulky": False,
        "date_created": "2026-11-30T09:00:00Z",
        "version": 2,
    }
    envelope = record(
        c.FULFILLMENT_STATUS_CHANGED,
        c.FulfillmentStatusChanged(**dict(fulfillment("picking")), previous_status="packed"),
    ).model_copy(update={"dataversion": "1", "data": flat})
    received = decode_event(envelope.to_bytes())
    assert isinstance(received.data, c.FulfillmentStatusChangedV1)
    assert received.data.model_dump(mode="json") == flat
    assert c.sale_of(received.data) == sale


def test_data_that_fits_no_version_is_refused():
    envelope = record(c.FULFILLMENT_CREATED, fulfillment()).model_copy(
        update={"data": {"id": str(uuid.uuid4()), "sale": "not a sale"}}
    )
    with pytest.raises(ValidationError):
        decode_event(envelope.to_bytes())


def test_the_asyncapi_document_fixes_each_types_data_version():
    schemas = events_document("localhost:9092")["components"]["schemas"]
    created = schemas["FulfillmentCreatedEvent"]
    assert created["properties"]["dataversion"]["const"] == "2"
    assert schemas["SaleCreatedEvent"]["properties"]["dataversion"]["const"] == "2"
    assert schemas["StockReservedEvent"]["properties"]["dataversion"]["const"] == "1"
    snapshot = schemas["FulfillmentSnapshot"]
    assert snapshot["properties"]["sale"]["$ref"].endswith("/FulfillmentSale")
    assert snapshot["properties"]["location"]["$ref"].endswith("/FulfillmentLocation")
    assert snapshot["properties"]["shipping_provider"]["$ref"].endswith("/ShippingProvider")
    assert set(schemas["FulfillmentSale"]["required"]) == {
        "id",
        "shop",
        "sale_id",
        "date_created",
        "status",
    }
    assert set(schemas["FulfillmentShop"]["required"]) == {"id", "channel", "shop_name"}
    assert set(schemas["FulfillmentLocation"]["required"]) == {"name", "location_id"}
    assert set(schemas["ShippingProvider"]["required"]) == {"name", "shipping_provider_id"}
