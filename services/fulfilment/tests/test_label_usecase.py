"""Shipping labels from what shipping init recorded, against a real PostgreSQL."""

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pypdf
import pytest

from fulfilkit import contracts as c
from fulfilkit.errors import NotFound
from fulfilkit.events import utcnow
from fulfilkit.received import decode_event
from fulfilment import events, labels, store, usecases
from fulfilment.domain import Fulfillment, ShippingDetails, fulfillment_number
from fulfilment.labels import Party
from fulfilment.settings import FulfilmentSettings
from fulfilment.settled import Settled

pytestmark = pytest.mark.integration

ACTOR = "test"
SETTINGS = FulfilmentSettings()
ADDRESS = {"address1": "Storgata 1", "city": "Oslo", "postcode": "0155", "country": "NO"}


@dataclass
class AddressedSale:
    """A pending sale as orders' claim answers it, with a customer and an address."""

    id: uuid.UUID
    sale_id: str
    status: str = "pending"
    bulky: bool = False
    customer: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    location: dict[str, Any] | None = None  # as stock's reservation names it

    def snapshot(self) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        line = {"sku": "A", "quantity": 1}
        return {
            "id": str(self.id),
            "sale_id": self.sale_id,
            "status": self.status,
            "version": 2,
            "shop": {"channel": "web", "shop_name": "test"},
            "location_id": "wh-1",
            "lines": [line],
            "customer": self.customer,
            "shipping_address": self.shipping_address,
            "reservation": {
                "lines": [{**line, "is_bulky": self.bulky}],
                **({"location": self.location} if self.location else {}),
            },
            "created_at": now,
            "updated_at": now,
        }


def claimable(orders, tenant: uuid.UUID, **kwargs: Any) -> AddressedSale:
    """A sale the stand-in for orders will claim for `tenant`."""
    sale = AddressedSale(uuid.uuid4(), f"S-{uuid.uuid4().hex[:10]}", **kwargs)
    orders.sales[(tenant, sale.sale_id)] = sale
    return sale


async def test_a_label_prints_where_shipping_init_said_the_sale_goes(pool, orders, session):
    tenant = uuid.uuid4()
    sale = claimable(
        orders,
        tenant,
        bulky=True,
        customer={"name": "Ada Lovelace"},
        shipping_address=ADDRESS,
        location={"name": "Main warehouse", "address": {"street": "1 Dock Rd", "city": "Bergen"}},
    )
    outcome = await usecases.init_shipping(
        pool, orders.client(session), SETTINGS, tenant, ACTOR, [sale.sale_id], settled=Settled()
    )
    [f] = outcome.fulfillments

    label = await usecases.label_of(pool, tenant, str(f.id))

    assert label == labels.Label(
        tracking_number=f.tracking_number,
        provider="Fulfil Post",
        sender=Party("Main warehouse", ("1 Dock Rd", "Bergen")),
        recipient=Party("Ada Lovelace", ("Storgata 1", "Oslo 0155", "NO")),
        is_bulky=True,
        fulfillment_number=f.fulfillment_id,
        sale_id=sale.sale_id,
        date_created=f.date_created,
        canceled=False,
    )
    text = pypdf.PdfReader(io.BytesIO(labels.render(label))).pages[0].extract_text()
    assert f.tracking_number in text.splitlines()


async def test_a_sale_without_an_address_still_gets_a_label_saying_so(pool, orders, session):
    tenant = uuid.uuid4()
    sale = claimable(orders, tenant, location={"name": "Depot", "address": None})
    outcome = await usecases.init_shipping(
        pool, orders.client(session), SETTINGS, tenant, ACTOR, [sale.sale_id], settled=Settled()
    )
    [f] = outcome.fulfillments

    label = await usecases.label_of(pool, tenant, str(f.id))
    assert (label.sender, label.recipient) == (Party("Depot"), None)


async def test_the_consumer_records_the_address_when_it_creates_the_fulfillment(pool):
    tenant, sale = uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    data = c.SaleStatusChanged(
        id=sale,
        sale_id="S-followed",
        status="in_fulfillment",
        previous_status="pending",
        version=2,
        shop=c.Shop(channel="web", shop_name="t"),
        location_id="wh-2",
        lines=[c.SaleLine(sku="A", quantity=1)],
        customer={"first_name": "Grace", "last_name": "Hopper"},
        shipping_address={"line1": "1 Navy Way", "city": "Arlington"},
        reservation={"lines": [], "location": {"name": "Yard 2", "address": {"zip": "22202"}}},
        created_at=now,
        updated_at=now,
    )
    event = c.make_event(
        source="/orders",
        type=c.SALE_STATUS_CHANGED,
        tenant_id=tenant,
        subject=f"sale/{sale}",
        data=data,
    )

    async with pool.acquire() as conn, conn.transaction():
        await usecases.follow_sales(conn, SETTINGS, [decode_event(event.to_bytes())])

    async with pool.acquire() as conn:
        [[f]] = (await store.by_sale_ids(conn, tenant, ["S-followed"])).values()
    label = await usecases.label_of(pool, tenant, str(f.id))
    assert (label.sender, label.recipient) == (
        Party("Yard 2", ("22202",)),
        Party("Grace Hopper", ("1 Navy Way", "Arlington")),
    )


async def test_a_reservation_that_names_no_location_leaves_its_id_as_sender(pool, orders, session):
    tenant = uuid.uuid4()
    sale = claimable(orders, tenant, shipping_address=ADDRESS)
    [f] = (
        await usecases.init_shipping(
            pool, orders.client(session), SETTINGS, tenant, ACTOR, [sale.sale_id], settled=Settled()
        )
    ).fulfillments

    assert (await usecases.label_of(pool, tenant, str(f.id))).sender == Party("wh-1")


async def test_no_label_before_shipping_init_nor_for_another_tenant(pool, orders, session):
    tenant = uuid.uuid4()
    sale = claimable(orders, tenant, shipping_address=ADDRESS)
    [f] = (
        await usecases.init_shipping(
            pool, orders.client(session), SETTINGS, tenant, ACTOR, [sale.sale_id], settled=Settled()
        )
    ).fulfillments

    for tenant_, asked in (
        (uuid.uuid4(), str(f.id)),  # another tenant's fulfillment
        (tenant, str(uuid.uuid4())),  # none yet: no shipping init
        (tenant, f.fulfillment_id),  # not an id fulfillments are read by
    ):
        with pytest.raises(NotFound, match="No fulfillment"):
            await usecases.label_of(pool, tenant_, asked)


async def test_a_fulfillment_recorded_before_addresses_were_has_a_label_without_one(pool):
    tenant, fid = uuid.uuid4(), uuid.uuid4()
    older = Fulfillment(
        id=fid,
        tenant_id=tenant,
        fulfillment_id=fulfillment_number(fid),
        sale=uuid.uuid4(),
        sale_id="S-older",
        location="wh-1",
        status="waiting_for_picking",
        shipping_provider="fulfil-post",
        tracking_number=f"FP{uuid.uuid4().hex[:11]}",
        is_bulky=False,
        version=1,
        date_created=utcnow(),
        shop_channel="web",
        shop_name="Shop",
        sale_date_created=utcnow(),
        location_name="wh-1",
    )
    async with pool.acquire() as conn:  # as before shipping details were kept
        await store.create(
            conn,
            [(older, ShippingDetails(older.id, None, None), events.fulfillment_created(older))],
        )
        await conn.execute("DELETE FROM fulfilment.shipping_details WHERE id = $1", older.id)

    label = await usecases.label_of(pool, tenant, str(older.id))

    assert (label.recipient, label.tracking_number) == (None, older.tracking_number)
