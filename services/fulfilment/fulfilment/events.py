"""Turns fulfillment changes into the platform's events."""

from fulfilkit import contracts as c
from fulfilkit.outbox import Keyed
from fulfilment.domain import Fulfillment

SOURCE = "/fulfilment"


def snapshot(f: Fulfillment) -> c.FulfillmentSnapshot:
    fields = dict(vars(f))  # every field is a scalar: a shallow copy is enough
    fields.pop("tenant_id")
    return c.FulfillmentSnapshot(**fields)


def fulfillment_created(f: Fulfillment) -> Keyed:
    event = c.make_event(
        source=SOURCE,
        type=c.FULFILLMENT_CREATED,
        tenant_id=f.tenant_id,
        subject=f"fulfillment/{f.id}",
        data=snapshot(f),
    )
    return c.sale_key(f.tenant_id, f.sale), event


def fulfillment_status_changed(f: Fulfillment, previous: str) -> Keyed:
    data = c.FulfillmentStatusChanged(**snapshot(f).model_dump(), previous_status=previous)  # type: ignore[arg-type]
    event = c.make_event(
        source=SOURCE,
        type=c.FULFILLMENT_STATUS_CHANGED,
        tenant_id=f.tenant_id,
        subject=f"fulfillment/{f.id}",
        data=data,
    )
    return c.sale_key(f.tenant_id, f.sale), event
