"""What the consumer hands its use case: each typed sale event as a stock-relevant change."""

import uuid

import pytest

from fulfilkit import contracts as c
from fulfilkit.events import utcnow
from fulfilkit.received import decode_event
from stock.handlers import changes_stock, sale_change

TENANT = uuid.uuid4()


def received(type_: str, status: str = "shipped"):
    now = utcnow()
    data = c.SaleStatusChanged(
        id=uuid.uuid4(),
        sale_id="S-1",
        status=status,  # type: ignore[arg-type]
        previous_status="in_fulfillment",
        version=3,
        shop=c.Shop(channel="web", shop_name="t"),
        location_id="wh-1",
        lines=[c.SaleLine(sku="A", quantity=2), c.SaleLine(sku="B", quantity=1)],
        created_at=now,
        updated_at=now,
    )
    snapshot = c.SaleSnapshot(**data.model_dump()) if type_ == c.SALE_CREATED else data
    event = c.make_event(
        source="/orders", type=type_, tenant_id=TENANT, subject="sale/1", data=snapshot
    )
    return decode_event(event.to_bytes())


@pytest.mark.parametrize(
    ("type_", "kind"),
    [
        (c.SALE_CREATED, "created"),
        (c.SALE_CANCELED, "canceled"),
        (c.SALE_STATUS_CHANGED, "shipped"),
    ],
)
def test_each_relevant_sale_event_is_one_change(type_, kind):
    event = received(type_)
    assert changes_stock(event)
    change = sale_change(event)
    assert change.kind == kind
    assert change.sale.sale == event.data.id
    assert (change.sale.tenant_id, change.sale.location_id, change.sale.lines) == (
        TENANT,
        "wh-1",
        (("A", 2), ("B", 1)),
    )


def test_other_status_changes_are_not_for_stock():
    assert not changes_stock(received(c.SALE_STATUS_CHANGED, "delivered"))


def updated(changed: list[str], location_id: str | None = "wh-1"):
    now = utcnow()
    data = c.SaleUpdated(
        id=uuid.uuid4(),
        sale_id="S-1",
        status="awaiting_stock",
        previous_status="pending",
        changed=changed,
        version=4,
        shop=c.Shop(channel="web", shop_name="t"),
        location_id=location_id,
        allow_split=False,
        lines=[c.SaleLine(sku="A", quantity=3)],
        created_at=now,
        updated_at=now,
    )
    event = c.make_event(
        source="/orders", type=c.SALE_UPDATED, tenant_id=TENANT, subject="sale/1", data=data
    )
    return decode_event(event.to_bytes())


@pytest.mark.parametrize(
    ("changed", "location_id"),
    [(["lines"], "wh-1"), (["priority", "location_id"], "wh-2"), (["allow_split"], None)],
)
def test_an_edit_of_what_to_reserve_is_an_edited_change(changed, location_id):
    event = updated(changed, location_id)
    assert changes_stock(event)
    change = sale_change(event)
    assert change.kind == "edited"
    assert (change.sale.location_id, change.sale.lines, change.sale.version) == (
        location_id,
        (("A", 3),),
        4,
    )
    assert change.sale.allow_split is False


@pytest.mark.parametrize(
    ("changed", "location_id"),
    [(["priority", "shipping_address"], "wh-1"), (["allow_split"], "wh-1")],
)
def test_other_edits_are_not_for_stock(changed, location_id):
    assert not changes_stock(updated(changed, location_id))
