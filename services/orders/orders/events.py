"""Turns sale changes into the platform's events (contracts in fulfilkit.contracts).

A sale's event data is validated once, into the model its type carries, and written
straight to the event's bytes (`fulfilkit.contracts.encode_event`)."""

from typing import Any

from fulfilkit import contracts as c
from fulfilkit.events import utcnow
from fulfilkit.outbox import Keyed
from orders.domain import Edit, Sale, StatusChange
from orders.returns import Return, ReturnChange

SOURCE = "/orders"


def shop(sale: Sale) -> c.Shop:
    """The sale's shop with its id (derived from its names, see `fulfilkit.contracts.shop_id`)."""
    return c.Shop.named(sale.shop["channel"], sale.shop["shop_name"])


def snapshot(sale: Sale) -> c.SaleSnapshot:
    return c.SaleSnapshot(**_fields(sale))


def _fields(sale: Sale) -> dict[str, Any]:
    """The sale as its snapshot's fields (`c.SaleSnapshot` and the models extending it),
    for one validation into whichever of them an event carries."""
    now = utcnow()
    return dict(
        id=sale.id,
        sale_id=sale.sale_id,
        status=sale.status,
        version=sale.version,
        shop=shop(sale),
        location_id=sale.location_id,
        lines=[c.SaleLine(**ln) for ln in sale.lines],
        customer=sale.customer,
        shipping_address=sale.shipping_address,
        cancel_reason=sale.cancel_reason,
        reservation=sale.reservation,
        fulfillments=sale.fulfillments,
        created_at=sale.created_at or now,
        updated_at=now,
        priority=sale.priority,
        instructions=sale.instructions,
        required_dates=sale.required_dates,
        invoice_value=sale.invoice_value,
        cash_on_delivery=sale.cash_on_delivery,
        properties=sale.properties,
        allow_split=sale.allow_split,
        shipped_parts=sale.shipped_parts,
    )


def _event(sale: Sale, type_: str, data: c.SaleSnapshot) -> Keyed:
    event = c.encode_event(
        source=SOURCE, type=type_, tenant_id=sale.tenant_id, subject=f"sale/{sale.id}", data=data
    )
    return c.sale_key(sale.tenant_id, sale.id), event


def sale_created(sale: Sale) -> Keyed:
    return _event(sale, c.SALE_CREATED, snapshot(sale))


def status_changed(change: StatusChange) -> list[Keyed]:
    data = c.SaleStatusChanged(
        **_fields(change.sale), previous_status=change.previous, reason=change.reason
    )
    keyed = [_event(change.sale, c.SALE_STATUS_CHANGED, data)]
    if change.sale.status == "canceled":
        keyed.append(_event(change.sale, c.SALE_CANCELED, data))
    return keyed


def sale_updated(edit: Edit) -> Keyed:
    """The sale after an edit, with the status it had before and the fields it changed."""
    data = c.SaleUpdated(**_fields(edit.sale), previous_status=edit.previous, changed=edit.changed)
    return _event(edit.sale, c.SALE_UPDATED, data)


# --- returns ("Returns" in docs/api-guide.md): keyed by their sale, in order with it ---------


def return_snapshot(ret: Return) -> c.ReturnSnapshot:
    return c.ReturnSnapshot.model_validate(vars(ret) | {"version": ret.version})


def _return_event(ret: Return, type_: str, data: c.ReturnSnapshot) -> Keyed:
    event = c.make_event(
        source=SOURCE, type=type_, tenant_id=ret.tenant_id, subject=f"return/{ret.id}", data=data
    )
    return c.sale_key(ret.tenant_id, ret.sale), event


def return_created(ret: Return) -> Keyed:
    return _return_event(ret, c.RETURN_CREATED, return_snapshot(ret))


def return_status_changed(change: ReturnChange) -> Keyed:
    data = c.ReturnStatusChanged(
        **return_snapshot(change.ret).model_dump(),
        previous_status=change.previous,
    )
    return _return_event(change.ret, c.RETURN_STATUS_CHANGED, data)
