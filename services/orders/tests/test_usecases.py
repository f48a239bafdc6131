"""Each use case on a real PostgreSQL: what a caller would notice (sales, their history, the
events in the outbox, the domain errors)."""

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from fulfilkit import contracts as c
from fulfilkit.errors import Conflict, Duplicated, Invalid, NotFound
from fulfilkit.inbox import Unrecorded
from fulfilkit.notify import Waiter
from fulfilkit.received import Event, decode_event
from orders import store, usecases
from orders.domain import NewSale, ship
from tests.support import eventually

pytestmark = pytest.mark.integration


def order(sale_id: str, channel: str = "web") -> NewSale:
    return NewSale(
        sale_id=sale_id,
        shop={"channel": channel, "shop_name": "Shop"},
        location_id="wh-1",
        lines=[{"sku": "A", "quantity": 2}],
        customer={"name": "Ada"},
    )


async def in_catalogue(pool, tenant: uuid.UUID, *skus: str) -> uuid.UUID:
    """The tenant, with these SKUs in orders' copy of its catalogue."""
    await pool.execute(
        "INSERT INTO orders.catalogue (tenant_id, sku) SELECT $1, unnest($2::text[])",
        tenant,
        list(skus),
    )
    return tenant


def waiter(pool) -> Waiter:
    async def settled(ids):
        async with pool.acquire() as conn:
            return await store.settled(conn, ids)

    return Waiter(pool, store.STATUS_CHANNEL, settled, poll_interval=0.05)


async def create(pool, tenant, *sale_ids: str) -> list:
    created = await usecases.create_sales(
        pool, waiter(pool), tenant, "tester", [order(s) for s in sale_ids], None
    )
    assert created.refused == []
    return [sale for sale, _ in created.sales]


async def published(pool, tenant) -> list[tuple[str, dict[str, Any]]]:
    """The tenant's events in the outbox, oldest first: (type, data)."""
    rows = await pool.fetch(
        "SELECT payload FROM orders.outbox WHERE key LIKE $1 ORDER BY seq", f"{tenant}:%"
    )
    events = [orjson.loads(r["payload"]) for r in rows]
    return [(e["type"], e["data"]) for e in events]


async def history(pool, sale_id: uuid.UUID) -> list[tuple[str | None, str, str | None, str]]:
    rows = await pool.fetch(
        "SELECT from_status, to_status, reason, actor FROM orders.status_history"
        " WHERE sale = $1 ORDER BY id",
        sale_id,
    )
    return [tuple(r) for r in rows]


def event(tenant, event_type: str, data: Any) -> Event[Any]:
    envelope = c.make_event(
        source=c.SOURCE_OF_TOPIC[c.TOPIC_OF_TYPE[event_type]],
        type=event_type,
        tenant_id=tenant,
        subject="test",
        data=data,
    )
    return decode_event(envelope.to_bytes())


def reservation(sale, status: str = "active") -> c.ReservationSnapshot:
    return c.ReservationSnapshot(
        id=uuid.uuid4(),
        sale=sale.id,
        sale_id=sale.sale_id,
        location_id=sale.location_id,
        status=status,  # type: ignore[arg-type]
        lines=[c.ReservationLine(sku="A", quantity=2, stock_record_id=uuid.uuid4())],
        version=1,
        updated_at=datetime.now(UTC),
    )


def fulfillment(sale, status: str = "waiting_for_picking", fid: uuid.UUID | None = None):
    fields = {
        "id": fid or uuid.uuid4(),
        "fulfillment_id": f"F-{sale.sale_id}",
        "sale": c.FulfillmentSale(
            id=sale.id,
            shop=c.FulfillmentShop(id=uuid.uuid4(), channel="web", shop_name="Main"),
            sale_id=sale.sale_id,
            date_created=datetime.now(UTC),
            status="in_fulfillment",
        ),
        "location": c.FulfillmentLocation(name="Warehouse 1", location_id=sale.location_id),
        "status": status,
        "shipping_provider": c.ShippingProvider(name="Post", shipping_provider_id="post"),
        "tracking_number": "T-1",
        "is_bulky": False,
        "date_created": datetime.now(UTC),
        "sale_id": sale.sale_id,
        "version": 1,
    }
    if status == "waiting_for_picking":
        return c.FulfillmentSnapshot(**fields)
    return c.FulfillmentStatusChanged(**fields, previous_status="shipped")


async def apply(pool, *events: Event[Any]) -> None:
    """Apply as the consumer does, as a consumer of its own each time (never a duplicate)."""
    unrecorded = Unrecorded(store.S, f"test-{uuid.uuid4()}", [e.id for e in events])
    async with pool.acquire() as conn, conn.transaction():
        await usecases.apply_outcomes(conn, list(events), unrecorded)


async def status_of(pool, tenant, sale_id: str) -> str:
    sale, _ = await usecases.get_sale(pool, tenant, sale_id)
    return sale.status


def whole(*sale_ids: str) -> list[tuple[str, None]]:
    """Whole sales, as parts to ship: every part of each."""
    return [(sale_id, None) for sale_id in sale_ids]


async def at(pool, tenant, status: str, sale_id: str = "S-1"):
    """A sale of `tenant` moved to `status` the way the platform moves it."""
    [sale] = await create(pool, tenant, sale_id)
    if status == "awaiting_stock":
        return sale
    await apply(pool, event(tenant, c.STOCK_RESERVED, reservation(sale)))
    if status in ("in_fulfillment", "shipped"):
        await usecases.claim_sales(pool, tenant, "fulfilment", [sale_id])
    if status == "shipped":
        await usecases.ship_parts(pool, tenant, "fulfilment", whole(sale_id))
    if status == "canceled":
        await usecases.cancel_sale(pool, tenant, "tester", sale_id, "other")
    assert await status_of(pool, tenant, sale_id) == status
    return sale


# create_sales


async def test_created_sales_wait_for_stock_with_their_history_and_created_event(pool, tenant):
    created = await usecases.create_sales(
        pool, waiter(pool), tenant, "tester", [order("S-1"), order("S-2")], None
    )
    assert [(s.sale_id, s.status, s.version) for s, _ in created.sales] == [
        ("S-1", "awaiting_stock", 1),
        ("S-2", "awaiting_stock", 1),
    ]
    [(first, entries), _] = created.sales
    assert [(e["from_status"], e["to_status"], e["reason"], e["actor"]) for e in entries] == [
        (None, "awaiting_stock", "created", "tester")
    ]
    assert await history(pool, first.id) == [(None, "awaiting_stock", "created", "tester")]
    assert [(t, d["sale_id"]) for t, d in await published(pool, tenant)] == [
        (c.SALE_CREATED, "S-1"),
        (c.SALE_CREATED, "S-2"),
    ]


async def test_a_taken_sale_id_is_refused_and_the_others_are_created(pool, tenant):
    await create(pool, tenant, "S-1")
    created = await usecases.create_sales(
        pool,
        waiter(pool),
        tenant,
        "tester",
        [order("S-2"), order("S-1"), order("S-2"), order("S-3")],
        None,
    )
    assert [s.sale_id for s, _ in created.sales] == ["S-2", "S-3"]
    assert [(i, type(e), e.detail) for i, e in created.refused] == [
        (1, Duplicated, "A sale with sale_id 'S-1' exists."),
        (2, Duplicated, "sale_id 'S-2' appears earlier in this batch."),
    ]
    assert [d["sale_id"] for _, d in await published(pool, tenant)] == ["S-1", "S-2", "S-3"]
    # another tenant's sale_ids are its own
    other = await in_catalogue(pool, uuid.uuid4(), "A")
    assert len(await create(pool, other, "S-1")) == 1


async def test_a_create_that_waits_answers_once_the_reservation_outcome_is_in(pool, tenant):
    sales_waiter = waiter(pool)
    listening = asyncio.create_task(sales_waiter.run())

    async def reserve_when_created() -> None:
        row = await eventually(
            lambda: pool.fetchrow("SELECT id FROM orders.sales WHERE tenant_id = $1", tenant),
            lambda found: found is not None,
            timeout=5,
            interval=0.01,
            what="the sale",
        )
        async with pool.acquire() as conn:
            [sale] = (await store.lock_sales(conn, [row["id"]])).values()
        await apply(pool, event(tenant, c.STOCK_RESERVED, reservation(sale)))

    async def is_listening() -> bool:
        return sales_waiter.listening

    try:
        await eventually(is_listening, bool, timeout=5, interval=0.01, what="the listener")
        started = time.monotonic()
        outcome = asyncio.create_task(reserve_when_created())
        created = await usecases.create_sales(
            pool, sales_waiter, tenant, "tester", [order("S-1")], 10.0
        )
        await outcome
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    assert time.monotonic() - started < 5, "woken by the outcome, not at the deadline"
    [(sale, entries)] = created.sales
    assert (sale.status, sale.reservation["status"]) == ("pending", "active")
    assert [e["to_status"] for e in entries] == ["awaiting_stock", "pending"]


async def test_a_create_that_waits_in_vain_answers_the_sale_still_awaiting_stock(pool, tenant):
    started = time.monotonic()
    created = await usecases.create_sales(pool, waiter(pool), tenant, "tester", [order("S-1")], 0.3)
    assert 0.3 <= time.monotonic() - started < 3
    [(sale, entries)] = created.sales
    assert sale.status == "awaiting_stock"
    assert [e["to_status"] for e in entries] == ["awaiting_stock"]


# the catalogue


def product(sku: str) -> c.ProductSnapshot:
    now = datetime.now(UTC)
    return c.ProductSnapshot(
        sku=sku,
        name=sku,
        unit_type="unit",
        min_level=0,
        is_bulky=False,
        version=1,
        created_at=now,
        updated_at=now,
    )


async def test_a_sale_naming_skus_outside_the_catalogue_is_refused_with_pointers(pool, tenant):
    strange = NewSale(
        sale_id="S-2",
        shop={"channel": "web", "shop_name": "Shop"},
        location_id="wh-1",
        lines=[
            {"sku": "A", "quantity": 1},
            {"sku": "NOPE", "quantity": 1},
            {"sku": "B", "quantity": 2},
        ],
    )
    started = time.monotonic()
    created = await usecases.create_sales(
        pool, waiter(pool), tenant, "tester", [order("S-1"), strange], None, 0.2
    )
    assert time.monotonic() - started >= 0.2, "waited for the catalogue copy to learn them"
    assert [s.sale_id for s, _ in created.sales] == ["S-1"]
    [(index, refusal)] = created.refused
    assert (index, type(refusal)) == (1, Invalid)
    assert refusal.errors == [
        {
            "field": "/lines/1/sku",
            "message": "No product with sku 'NOPE' in the catalogue.",
            "in": "body",
        },
        {
            "field": "/lines/2/sku",
            "message": "No product with sku 'B' in the catalogue.",
            "in": "body",
        },
    ]
    assert [d["sale_id"] for _, d in await published(pool, tenant)] == ["S-1"]
    assert (
        await pool.fetchval("SELECT count(*) FROM orders.sales WHERE tenant_id = $1", tenant) == 1
    )


async def test_a_product_created_a_moment_ago_is_waited_for(pool):
    other = await in_catalogue(pool, uuid.uuid4())
    announced = product("A")

    async def announce_later() -> None:
        await asyncio.sleep(0.2)
        await apply(pool, event(other, c.PRODUCT_CREATED, announced))

    later = asyncio.create_task(announce_later())
    created = await usecases.create_sales(
        pool, waiter(pool), other, "tester", [order("S-1")], None, 5.0
    )
    await later
    assert [s.sale_id for s, _ in created.sales] == ["S-1"] and created.refused == []
    # the same event again changes nothing; another tenant's catalogue is its own
    await apply(pool, event(other, c.PRODUCT_CREATED, announced))
    assert (
        await pool.fetchval("SELECT count(*) FROM orders.catalogue WHERE tenant_id = $1", other)
        == 1
    )
    third = uuid.uuid4()
    refused = await usecases.create_sales(pool, waiter(pool), third, "t", [order("S-1")], None)
    assert [type(e) for _, e in refused.refused] == [Invalid]


# get_sale, list_sales


async def test_a_sale_is_found_with_its_history_and_not_by_another_tenant(pool, tenant):
    await at(pool, tenant, "pending")
    sale, entries = await usecases.get_sale(pool, tenant, "S-1")
    assert (sale.sale_id, sale.status, sale.version) == ("S-1", "pending", 2)
    assert [(e["from_status"], e["to_status"]) for e in entries] == [
        (None, "awaiting_stock"),
        ("awaiting_stock", "pending"),
    ]
    with pytest.raises(NotFound, match="No sale with sale_id 'S-1'"):
        await usecases.get_sale(pool, uuid.uuid4(), "S-1")


async def test_sales_are_listed_oldest_first_by_status_and_channel(pool, tenant):
    for new in (order("S-1"), order("S-2", "shop"), order("S-3")):  # one at a time: in order
        await usecases.create_sales(pool, waiter(pool), tenant, "tester", [new], None)
    page, total = await usecases.list_sales(
        pool,
        tenant,
        statuses=[],
        channel=None,
        created_from=None,
        created_to=None,
        limit=2,
        offset=1,
    )
    assert ([s.sale_id for s in page], total) == (["S-2", "S-3"], 3)
    page, total = await usecases.list_sales(
        pool,
        tenant,
        statuses=["awaiting_stock"],
        channel="shop",
        created_from=None,
        created_to=None,
        limit=10,
        offset=0,
    )
    assert ([s.sale_id for s in page], total) == (["S-2"], 1)


# cancel_sale


async def test_cancel_ends_a_sale_with_both_events_and_again_changes_nothing(pool, tenant):
    sale = await at(pool, tenant, "pending")
    canceled = await usecases.cancel_sale(pool, tenant, "tester", "S-1", "customer_request")
    assert (canceled.status, canceled.version, canceled.cancel_reason) == (
        "canceled",
        3,
        "customer_request",
    )
    again = await usecases.cancel_sale(pool, tenant, "tester", "S-1", "other", version=1)
    assert (again.status, again.version, again.cancel_reason) == (
        "canceled",
        3,
        "customer_request",
    )
    types = [t for t, _ in await published(pool, tenant)]
    assert types == [c.SALE_CREATED, c.SALE_STATUS_CHANGED, c.SALE_STATUS_CHANGED, c.SALE_CANCELED]
    assert (await history(pool, sale.id))[-1] == (
        "pending",
        "canceled",
        "customer_request",
        "tester",
    )


async def test_a_shipped_sale_cannot_be_canceled(pool, tenant):
    await at(pool, tenant, "shipped")
    with pytest.raises(Conflict) as refused:
        await usecases.cancel_sale(pool, tenant, "tester", "S-1", "other")
    assert refused.value.detail == "The sale is shipped and can no longer be canceled."
    assert refused.value.extra == {"sale_status": "shipped"}
    assert await status_of(pool, tenant, "S-1") == "shipped"


async def test_cancel_at_a_version_the_sale_has_left_is_a_conflict(pool, tenant):
    await at(pool, tenant, "pending")
    with pytest.raises(Conflict) as refused:
        await usecases.cancel_sale(pool, tenant, "tester", "S-1", "other", version=1)
    assert refused.value.detail == (
        "The sale has changed since version 1: it is pending at version 2."
    )
    assert refused.value.extra == {"sale_status": "pending", "version": 2}
    assert await status_of(pool, tenant, "S-1") == "pending"
    canceled = await usecases.cancel_sale(pool, tenant, "tester", "S-1", "other", version=2)
    assert canceled.status == "canceled"


async def test_cancel_of_an_unknown_sale_is_not_found(pool, tenant):
    with pytest.raises(NotFound, match="No sale with sale_id 'nope'"):
        await usecases.cancel_sale(pool, tenant, "tester", "nope", "other")


# claim_sales


async def test_pending_sales_are_claimed_once(pool, tenant):
    await at(pool, tenant, "pending", "S-1")
    await at(pool, tenant, "awaiting_stock", "S-2")
    claimed = await usecases.claim_sales(pool, tenant, "fulfilment", ["S-1", "S-2", "S-9", "S-1"])
    assert [(s.sale_id, s.status, s.version) for s in claimed.done] == [
        ("S-1", "in_fulfillment", 3)
    ]
    assert [(sale_id, type(e), e.detail, e.extra) for sale_id, e in claimed.refused] == [
        (
            "S-2",
            Conflict,
            "Only pending sales can be shipped; this one is awaiting_stock.",
            {"status": "awaiting_stock"},
        ),
        ("S-9", NotFound, "No such sale.", {}),
    ]
    again = await usecases.claim_sales(pool, tenant, "fulfilment", ["S-1"])
    assert again.done == []
    assert [e.extra for _, e in again.refused] == [{"status": "in_fulfillment"}]
    changed = [d for t, d in await published(pool, tenant) if t == c.SALE_STATUS_CHANGED]
    assert [(d["sale_id"], d["status"], d["reason"]) for d in changed][-1] == (
        "S-1",
        "in_fulfillment",
        "shipping_init",
    )


# ship_parts


async def test_sales_in_fulfillment_ship_and_shipping_twice_is_once(pool, tenant):
    await at(pool, tenant, "in_fulfillment", "S-1")
    await at(pool, tenant, "canceled", "S-2")
    shipped = await usecases.ship_parts(pool, tenant, "fulfilment", whole("S-1", "S-2", "S-9"))
    assert [(s.sale_id, s.status) for s in shipped.done] == [("S-1", "shipped")]
    assert [(sale_id, type(e), e.detail, e.extra) for sale_id, _, e in shipped.refused] == [
        ("S-2", Conflict, "The sale is canceled and cannot ship.", {"sale_status": "canceled"}),
        ("S-9", NotFound, "No sale with sale_id 'S-9'.", {}),
    ]
    before = await published(pool, tenant)
    again = await usecases.ship_parts(pool, tenant, "fulfilment", whole("S-1"))
    assert [(s.sale_id, s.status, s.version) for s in again.done] == [("S-1", "shipped", 4)]
    assert again.refused == []
    assert await published(pool, tenant) == before, "no second event"


async def test_one_sale_ships_by_compare_and_set_with_its_history_and_event(pool, tenant):
    sale = await at(pool, tenant, "in_fulfillment", "S-1")
    before = await published(pool, tenant)
    shipped = await usecases.ship_parts(pool, tenant, "fulfilment", whole("S-1"))
    assert [(s.sale_id, s.status, s.version) for s in shipped.done] == [("S-1", "shipped", 4)]
    assert (await history(pool, sale.id))[-1] == (
        "in_fulfillment", "shipped", "fulfillment_shipped", "fulfilment",
    )  # fmt: skip
    after = await published(pool, tenant)
    assert [(t, d["status"]) for t, d in after[len(before) :]] == [
        (c.SALE_STATUS_CHANGED, "shipped")
    ]


async def test_a_sale_changed_after_it_was_read_is_not_overwritten(pool, tenant):
    """The compare-and-set writes only the sale as read: a reservation recorded on it since
    (without a new version) makes it refuse, and nothing is written."""
    sale = await at(pool, tenant, "in_fulfillment", "S-1")
    read, _ = await usecases.get_sale(pool, tenant, "S-1")
    change = ship(read, datetime.now(UTC))
    assert change is not None
    await pool.execute(
        "UPDATE orders.sales SET reservation = '{\"changed\": true}' WHERE id = $1", sale.id
    )
    async with pool.acquire() as conn:
        assert not await store.save_if_unchanged(conn, change, "fulfilment", [])
    assert await status_of(pool, tenant, "S-1") == "in_fulfillment"
    shipped = await usecases.ship_parts(pool, tenant, "fulfilment", whole("S-1"))  # under the lock
    assert [(s.status, s.reservation) for s in shipped.done] == [("shipped", {"changed": True})]


async def test_a_pending_sale_does_not_ship_before_it_is_claimed(pool, tenant):
    await at(pool, tenant, "pending")
    shipped = await usecases.ship_parts(pool, tenant, "fulfilment", whole("S-1"))
    assert shipped.done == []
    assert [e.extra for _, _, e in shipped.refused] == [{"sale_status": "pending"}]


# apply_outcomes


async def test_reservation_outcomes_move_waiting_sales_and_are_kept_on_them(pool, tenant):
    one, two = await create(pool, tenant, "S-1", "S-2")
    reserved = reservation(one)
    short = c.ReservationFailed(
        sale=two.id,
        sale_id=two.sale_id,
        location_id=two.location_id,
        shortfalls=[c.Shortfall(sku="A", requested=2, available=0, reason="insufficient_stock")],
    )
    await apply(
        pool,
        event(tenant, c.STOCK_RESERVED, reserved),
        event(tenant, c.STOCK_RESERVATION_FAILED, short),
    )
    sale, entries = await usecases.get_sale(pool, tenant, "S-1")
    assert (sale.status, sale.reservation) == ("pending", reserved.model_dump(mode="json"))
    assert entries[-1]["actor"] == usecases.OUTCOMES_ACTOR
    sale, _ = await usecases.get_sale(pool, tenant, "S-2")
    assert (sale.status, sale.reservation) == ("backordered", short.model_dump(mode="json"))
    changed = [
        (d["sale_id"], d["status"], d["reason"])
        for t, d in await published(pool, tenant)
        if t == c.SALE_STATUS_CHANGED
    ]
    assert changed == [("S-1", "pending", "stock_reserved"), ("S-2", "backordered", "stock_short")]


async def test_an_outcome_recorded_before_is_skipped_and_locks_nothing(pool, tenant):
    """The inbox's insert and the lock of the sales are one statement: an event the consumer
    recorded before changes nothing, beside a new one of the same batch."""
    one, two = await create(pool, tenant, "S-1", "S-2")
    first = event(tenant, c.STOCK_RESERVED, reservation(one))
    consumer = f"test-{uuid.uuid4()}"
    async with pool.acquire() as conn, conn.transaction():
        await usecases.apply_outcomes(conn, [first], Unrecorded(store.S, consumer, [first.id]))
    once, history_once = await usecases.get_sale(pool, tenant, "S-1")
    second = event(tenant, c.STOCK_RESERVED, reservation(two))
    new_product = event(tenant, c.PRODUCT_CREATED, product("NEW"))
    batch = [first, second, new_product]
    async with pool.acquire() as conn, conn.transaction():
        await usecases.apply_outcomes(
            conn, batch, Unrecorded(store.S, consumer, [e.id for e in batch])
        )
    again, history_again = await usecases.get_sale(pool, tenant, "S-1")
    assert (again.version, again.updated_at, history_again) == (
        once.version,
        once.updated_at,
        history_once,
    )
    assert await status_of(pool, tenant, "S-2") == "pending"
    assert await store.known_skus(pool, tenant, {"NEW"}) == {"NEW"}
    recorded = await pool.fetchval(
        "SELECT count(*) FROM orders.inbox WHERE consumer = $1", consumer
    )
    assert recorded == 3


async def test_a_late_reservation_outcome_is_kept_but_moves_nothing(pool, tenant):
    sale = await at(pool, tenant, "canceled")
    before = await published(pool, tenant)
    late = reservation(sale)
    await apply(pool, event(tenant, c.STOCK_RESERVED, late))
    found, _ = await usecases.get_sale(pool, tenant, "S-1")
    assert (found.status, found.reservation) == ("canceled", late.model_dump(mode="json"))
    assert await published(pool, tenant) == before


async def test_a_released_reservation_is_kept_as_it_ended(pool, tenant):
    sale = await at(pool, tenant, "canceled")
    released = reservation(sale, "released")
    await apply(pool, event(tenant, c.STOCK_RELEASED, released))
    found, _ = await usecases.get_sale(pool, tenant, "S-1")
    assert (found.status, found.reservation["status"]) == ("canceled", "released")


async def test_fulfillments_are_kept_once_and_a_delivered_one_delivers_the_sale(pool, tenant):
    sale = await at(pool, tenant, "shipped")
    created = fulfillment(sale)
    await apply(pool, event(tenant, c.FULFILLMENT_CREATED, created))
    await apply(pool, event(tenant, c.FULFILLMENT_CREATED, created))  # a second event, same one
    found, _ = await usecases.get_sale(pool, tenant, "S-1")
    assert found.fulfillments == [created.model_dump(mode="json")]
    delivered = fulfillment(sale, "delivered", created.id)
    await apply(pool, event(tenant, c.FULFILLMENT_STATUS_CHANGED, delivered))
    found, entries = await usecases.get_sale(pool, tenant, "S-1")
    assert found.status == "delivered"
    assert found.fulfillments == [delivered.model_dump(mode="json", exclude={"previous_status"})]
    assert (entries[-1]["from_status"], entries[-1]["reason"]) == (
        "shipped",
        "fulfillment_delivered",
    )


async def test_an_outcome_about_another_tenants_sale_changes_nothing(pool, tenant):
    sale = await at(pool, tenant, "awaiting_stock")
    await apply(pool, event(uuid.uuid4(), c.STOCK_RESERVED, reservation(sale)))
    assert await status_of(pool, tenant, "S-1") == "awaiting_stock"


async def test_a_fulfillment_published_at_data_version_1_is_still_applied(pool, tenant):
    """Records published before the nested shape (still on the topic, or replayed from a
    dead letter) are read with their own model and kept on the sale as they were."""
    sale = await at(pool, tenant, "shipped")
    created = fulfillment(sale)
    await apply(pool, event(tenant, c.FULFILLMENT_CREATED, created))
    old = {
        "id": str(created.id),
        "fulfillment_id": created.fulfillment_id,
        "sale": str(sale.id),
        "sale_id": sale.sale_id,
        "location": sale.location_id,
        "status": "delivered",
        "previous_status": "shipped",
        "shipping_provider": "post",
        "tracking_number": "T-1",
        "is_bulky": False,
        "date_created": "2026-11-30T05:00:00Z",
        "version": 2,
    }
    envelope = c.make_event(
        source="/fulfilment",
        type=c.FULFILLMENT_STATUS_CHANGED,
        tenant_id=tenant,
        subject="test",
        data=fulfillment(sale, "delivered", created.id),
    ).model_copy(update={"dataversion": "1", "data": old})
    received = decode_event(envelope.to_bytes())
    assert isinstance(received.data, c.FulfillmentStatusChangedV1)
    await apply(pool, received)
    found, _ = await usecases.get_sale(pool, tenant, "S-1")
    kept = {k: v for k, v in old.items() if k != "previous_status"}
    assert (found.status, found.fulfillments) == ("delivered", [kept])


# split sales: shipped part by part


def split_reservation(sale) -> c.ReservationSnapshot:
    """Most units at wh-1, one at wh-2: a sale stock split across two locations."""
    return c.ReservationSnapshot(
        id=uuid.uuid4(),
        sale=sale.id,
        sale_id=sale.sale_id,
        location_id="wh-1",
        status="active",
        lines=[
            c.ReservationLine(sku="A", quantity=1, stock_record_id=uuid.uuid4()),
            c.ReservationLine(
                sku="A", quantity=1, stock_record_id=uuid.uuid4(), location_id="wh-2"
            ),
        ],
        other_locations=[c.ReservationPlace(location_id="wh-2")],
        version=1,
        updated_at=datetime.now(UTC),
    )


async def split_in_fulfillment(pool, tenant, sale_id: str = "S-1"):
    [sale] = await create(pool, tenant, sale_id)
    await apply(pool, event(tenant, c.STOCK_RESERVED, split_reservation(sale)))
    await usecases.claim_sales(pool, tenant, "fulfilment", [sale_id])
    assert await status_of(pool, tenant, sale_id) == "in_fulfillment"
    return sale


async def test_a_split_sale_ships_part_by_part_and_is_shipped_with_its_last(pool, tenant):
    sale = await split_in_fulfillment(pool, tenant)
    before = await published(pool, tenant)

    first = await usecases.ship_parts(pool, tenant, "fulfilment", [("S-1", "wh-2")])

    assert [(s.sale_id, s.status, s.version) for s in first.done] == [("S-1", "in_fulfillment", 3)]
    assert first.refused == []
    found, _ = await usecases.get_sale(pool, tenant, "S-1")
    assert (found.status, [p["location_id"] for p in found.shipped_parts]) == (
        "in_fulfillment",
        ["wh-2"],
    )
    assert await published(pool, tenant) == before, "no status change, no event"
    again = await usecases.ship_parts(pool, tenant, "fulfilment", [("S-1", "wh-2")])
    assert [(s.status, len(s.shipped_parts)) for s in again.done] == [("in_fulfillment", 1)]

    last = await usecases.ship_parts(pool, tenant, "fulfilment", [("S-1", "wh-1")])

    assert [(s.sale_id, s.status, s.version) for s in last.done] == [("S-1", "shipped", 4)]
    found, _ = await usecases.get_sale(pool, tenant, "S-1")
    assert [p["location_id"] for p in found.shipped_parts] == ["wh-2", "wh-1"]
    assert (await history(pool, sale.id))[-1] == (
        "in_fulfillment", "shipped", "fulfillment_shipped", "fulfilment",
    )  # fmt: skip
    [(kind, data)] = (await published(pool, tenant))[len(before) :]
    assert (kind, data["status"]) == (c.SALE_STATUS_CHANGED, "shipped")
    assert [p["location_id"] for p in data["shipped_parts"]] == ["wh-2", "wh-1"]


async def test_a_split_sale_with_a_part_shipped_cannot_be_canceled(pool, tenant):
    await split_in_fulfillment(pool, tenant)
    await usecases.ship_parts(pool, tenant, "fulfilment", [("S-1", "wh-2")])

    with pytest.raises(Conflict) as refused:
        await usecases.cancel_sale(pool, tenant, "tester", "S-1", "customer_request")

    assert refused.value.detail == (
        "Part of the sale has shipped (from wh-2): it can no longer be canceled."
    )
    assert refused.value.extra == {"sale_status": "in_fulfillment", "shipped_locations": ["wh-2"]}
    assert await status_of(pool, tenant, "S-1") == "in_fulfillment"


async def test_a_canceled_split_sale_ships_no_part(pool, tenant):
    await split_in_fulfillment(pool, tenant)
    await usecases.cancel_sale(pool, tenant, "tester", "S-1", "customer_request")

    shipped = await usecases.ship_parts(
        pool, tenant, "fulfilment", [("S-1", "wh-2"), ("S-1", "wh-1")]
    )

    assert shipped.done == []
    assert [(s, w, e.extra) for s, w, e in shipped.refused] == [
        ("S-1", "wh-2", {"sale_status": "canceled"}),
        ("S-1", "wh-1", {"sale_status": "canceled"}),
    ]
    found, _ = await usecases.get_sale(pool, tenant, "S-1")
    assert (found.status, found.shipped_parts) == ("canceled", [])


async def test_a_part_at_a_location_the_sale_does_not_ship_from_is_refused(pool, tenant):
    await split_in_fulfillment(pool, tenant)

    shipped = await usecases.ship_parts(pool, tenant, "fulfilment", [("S-1", "wh-9")])

    assert shipped.done == []
    [(sale_id, where, refusal)] = shipped.refused
    assert (sale_id, where, type(refusal), refusal.detail) == (
        "S-1",
        "wh-9",
        Conflict,
        "The sale ships nothing from 'wh-9'; it ships from wh-1, wh-2.",
    )


async def test_both_parts_shipped_at_once_ship_the_sale_once(pool, tenant):
    sale = await split_in_fulfillment(pool, tenant)

    await asyncio.gather(
        usecases.ship_parts(pool, tenant, "fulfilment", [("S-1", "wh-1")]),
        usecases.ship_parts(pool, tenant, "fulfilment", [("S-1", "wh-2")]),
    )

    found, _ = await usecases.get_sale(pool, tenant, "S-1")
    assert found.status == "shipped"
    assert sorted(p["location_id"] for p in found.shipped_parts) == ["wh-1", "wh-2"]
    assert [h[1] for h in await history(pool, sale.id)].count("shipped") == 1
