"""Turns fulfillment changes into the platform's events."""

from fulfilkit import contracts as c
from fulfilkit.outbox import Keyed
from fulfilment.domain import Fulfillment, sale_status
from fulfilment.providers import display_name

SOURCE = "/fulfilment"


def snapshot(f: Fulfillment) -> c.FulfillmentSnapshot:
    """The fulfillment as clients, events and webhooks show it (data version 2)."""
    return c.FulfillmentSnapshot(
        id=f.id,
        sale=c.FulfillmentSale(
            id=f.sale,
            shop=c.FulfillmentShop(
                id=c.shop_id(f.shop_channel, f.shop_name),
                channel=f.shop_channel,
                shop_name=f.shop_name,
            ),
            sale_id=f.sale_id,
            date_created=f.sale_date_created,
            status=sale_status(f.status),  # type: ignore[arg-type]
        ),
        location=c.FulfillmentLocation(name=f.location_name, location_id=f.location),
        fulfillment_id=f.fulfillment_id,
        status=f.status,  # type: ignore[arg-type]
        shipping_provider=c.ShippingProvider(
            name=display_name(f.shipping_provider), shipping_provider_id=f.shipping_provider
        ),
        tracking_number=f.tracking_number,
        date_created=f.date_created,
        is_bulky=f.is_bulky,
        sale_id=f.sale_id,
        version=f.version,
    )


def fulfillment_created(f: Fulfillment) -> Keyed:
    event = c.encode_event(
        source=SOURCE,
        type=c.FULFILLMENT_CREATED,
        tenant_id=f.tenant_id,
        subject=f"fulfillment/{f.id}",
        data=snapshot(f),
    )
    return c.sale_key(f.tenant_id, f.sale), event


def fulfillment_status_changed(f: Fulfillment, previous: str) -> Keyed:
    data = c.FulfillmentStatusChanged(**dict(snapshot(f)), previous_status=previous)  # type: ignore[arg-type]
    event = c.encode_event(
        source=SOURCE,
        type=c.FULFILLMENT_STATUS_CHANGED,
        tenant_id=f.tenant_id,
        subject=f"fulfillment/{f.id}",
        data=data,
    )
    return c.sale_key(f.tenant_id, f.sale), event
