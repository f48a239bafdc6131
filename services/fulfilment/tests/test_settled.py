"""The memory of committed fulfillments that lets the consumer skip a sale's event whose work
is done (`fulfilment.settled`), and the consumer's filter built on it."""

import dataclasses
import uuid
from typing import Any

from fulfilkit import contracts as c
from fulfilkit.events import utcnow
from fulfilkit.received import Event, decode_event
from fulfilment.domain import Fulfillment
from fulfilment.handlers import needs_work
from fulfilment.settled import Settled

TENANT = uuid.uuid4()
SPLIT = {
    "location_id": "wh-1",
    "lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1, "location_id": "wh-2"}],
    "other_locations": [{"location_id": "wh-2"}],
}


def event(sale: uuid.UUID, status: str, reservation: Any = None, type_: str = "") -> Event[Any]:
    now = utcnow()
    data = c.SaleStatusChanged(
        id=sale,
        sale_id="S-1",
        status=status,  # type: ignore[arg-type]
        previous_status="pending",
        version=3,
        shop=c.Shop(channel="web", shop_name="t"),
        location_id="wh-1",
        lines=[c.SaleLine(sku="A", quantity=1)],
        reservation=reservation or {"lines": [{"sku": "A", "quantity": 1}]},
        created_at=now,
        updated_at=now,
    )
    made = c.make_event(
        source="/orders",
        type=type_ or (c.SALE_CANCELED if status == "canceled" else c.SALE_STATUS_CHANGED),
        tenant_id=TENANT,
        subject=f"sale/{sale}",
        data=data,
    )
    return decode_event(made.to_bytes())


def fulfillment(sale: uuid.UUID, location: str = "wh-1", status: str = "waiting_for_picking"):
    fid = uuid.uuid4()
    return Fulfillment(
        id=fid,
        tenant_id=TENANT,
        fulfillment_id="F-1",
        sale=sale,
        sale_id="S-1",
        location=location,
        status=status,
        shipping_provider="fulfil-post",
        tracking_number="FP1",
        is_bulky=False,
        version=1,
        date_created=utcnow(),
        shop_channel="web",
        shop_name="t",
        sale_date_created=utcnow(),
        location_name=location,
    )


def test_a_claim_is_done_once_its_fulfillment_is_committed_here():
    settled, sale = Settled(), uuid.uuid4()
    claimed = event(sale, "in_fulfillment")
    assert not settled.done(claimed), "nothing known: the consumer looks"

    f = fulfillment(sale)
    settled.committed([f])

    assert settled.done(claimed)
    assert not settled.done(event(sale, "shipped")), "created, not shipped"
    assert not settled.done(event(uuid.uuid4(), "in_fulfillment")), "another sale"


def test_a_shipment_is_done_once_every_part_is_shipped_here():
    settled, sale = Settled(), uuid.uuid4()
    here, there = fulfillment(sale, "wh-1"), fulfillment(sale, "wh-2")
    settled.committed([here, there])
    assert settled.done(event(sale, "in_fulfillment", SPLIT)), "both parts exist"

    settled.committed([dataclasses.replace(here, status="shipped", version=2)])
    assert not settled.done(event(sale, "shipped", SPLIT)), "one part of two"

    settled.committed([dataclasses.replace(there, status="shipped", version=2)])
    assert settled.done(event(sale, "shipped", SPLIT))
    # what a later read says (an older state) does not unship it: statuses only move on
    settled.committed([here])
    assert settled.done(event(sale, "shipped", SPLIT))


def test_cancellations_and_other_statuses_always_go_to_the_consumer():
    settled, sale = Settled(), uuid.uuid4()
    settled.committed([fulfillment(sale, status="shipped")])

    assert not settled.done(event(sale, "canceled"))
    assert not settled.done(event(sale, "pending"))
    assert not settled.done(event(sale, "in_fulfillment", {"lines": "unreadable"}))


def test_the_memory_is_bounded_and_forgets_the_oldest():
    settled = Settled(size=2)
    sales = [uuid.uuid4() for _ in range(3)]
    settled.committed([fulfillment(s) for s in sales])

    assert [settled.done(event(s, "in_fulfillment")) for s in sales] == [False, True, True]


def test_the_consumer_skips_what_is_done_and_takes_the_rest():
    settled, sale = Settled(), uuid.uuid4()
    relevant = needs_work(settled)
    assert relevant(event(sale, "in_fulfillment"))
    assert not relevant(event(sale, "pending")), "no work for a fulfillment either way"

    settled.committed([fulfillment(sale)])

    assert not relevant(event(sale, "in_fulfillment"))
    assert relevant(event(sale, "shipped"))
    assert relevant(event(sale, "canceled"))
