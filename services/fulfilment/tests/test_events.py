"""A fulfillment as every route, event and webhook shows it (data version 2)."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilment import events
from fulfilment.domain import Fulfillment

SALE_CREATED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
MADE = SALE_CREATED + timedelta(minutes=5)


def fulfillment(status: str = "waiting_for_picking") -> Fulfillment:
    return Fulfillment(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        fulfillment_id="F-0B5C6F5E8A86",
        sale=uuid.uuid4(),
        sale_id="SO-1001",
        location="warehouse-1",
        status=status,
        shipping_provider="fulfil-freight",
        tracking_number="FF00010000016",
        is_bulky=True,
        version=2,
        date_created=MADE,
        shop_channel="TikTok",
        shop_name="Ripple Shop",
        sale_date_created=SALE_CREATED,
        location_name="Warehouse 1",
    )


def test_the_snapshot_nests_the_sale_location_and_provider():
    f = fulfillment()
    assert events.snapshot(f).model_dump(mode="json") == {
        "id": str(f.id),
        "sale": {
            "id": str(f.sale),
            "shop": {
                "id": str(c.shop_id("TikTok", "Ripple Shop")),
                "channel": "TikTok",
                "shop_name": "Ripple Shop",
            },
            "sale_id": "SO-1001",
            "date_created": "2026-11-30T09:00:00Z",
            "status": "in_fulfillment",
        },
        "location": {"name": "Warehouse 1", "location_id": "warehouse-1"},
        "fulfillment_id": "F-0B5C6F5E8A86",
        "status": "waiting_for_picking",
        "shipping_provider": {"name": "Fulfil Freight", "shipping_provider_id": "fulfil-freight"},
        "tracking_number": "FF00010000016",
        "date_created": "2026-11-30T09:05:00Z",
        "is_bulky": True,
        "sale_id": "SO-1001",
        "version": 2,
    }


@pytest.mark.parametrize(
    ("status", "sale_status"),
    [
        ("waiting_for_picking", "in_fulfillment"),
        ("picking", "in_fulfillment"),
        ("packed", "in_fulfillment"),
        ("shipped", "shipped"),
        ("delivered", "delivered"),
        ("canceled", "canceled"),
    ],
)
def test_the_sales_status_follows_the_fulfillments(status, sale_status):
    assert events.snapshot(fulfillment(status)).sale.status == sale_status


def test_a_provider_no_longer_built_in_is_named_by_its_code():
    gone = replace(fulfillment(), shipping_provider="old-carrier")
    assert events.snapshot(gone).shipping_provider == c.ShippingProvider(
        name="old-carrier", shipping_provider_id="old-carrier"
    )


def test_a_status_change_event_is_the_snapshot_plus_the_previous_status():
    f = fulfillment("packed")
    _, encoded = events.fulfillment_status_changed(f, "picking")
    event = CloudEvent.from_bytes(encoded.to_bytes())
    assert (event.id, event.type) == (encoded.id, encoded.type)
    assert (event.type, event.dataversion) == (c.FULFILLMENT_STATUS_CHANGED, "2")
    assert event.data == {
        **events.snapshot(f).model_dump(mode="json"),
        "previous_status": "picking",
    }
