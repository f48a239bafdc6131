"""The store's queries against a real PostgreSQL."""

import dataclasses
import uuid

import asyncpg
import pytest

from fulfilkit.events import utcnow
from fulfilkit.received import decode_event
from fulfilment import events, store
from fulfilment.domain import Fulfillment, ShippingDetails, fulfillment_number

pytestmark = pytest.mark.integration


def new(tenant: uuid.UUID, sale: uuid.UUID | None = None, status: str = "waiting_for_picking"):
    fid = uuid.uuid4()
    return Fulfillment(
        id=fid,
        tenant_id=tenant,
        fulfillment_id=fulfillment_number(fid),
        sale=sale or uuid.uuid4(),
        sale_id=f"S-{uuid.uuid4().hex[:10]}",
        location="wh-1",
        status=status,
        shipping_provider="fulfil-post",
        tracking_number=f"FP{uuid.uuid4().hex[:11]}",
        is_bulky=False,
        version=1,
        date_created=utcnow(),
        shop_channel="web",
        shop_name="Main",
        sale_date_created=utcnow(),
        location_name="Warehouse 1",
    )


async def insert(pool: asyncpg.Pool, *items: Fulfillment) -> list[uuid.UUID]:
    async with pool.acquire() as conn:
        added = await store.create(
            conn,
            [(f, ShippingDetails(f.id, None, None), events.fulfillment_created(f)) for f in items],
        )
    assert added == [f for f in items if f.id in {a.id for a in added}], "as stored"
    return [f.id for f in added]


async def test_insert_many_keeps_the_first_fulfillment_of_a_sale_s_part(pool):
    tenant = uuid.uuid4()
    first = new(tenant)
    second = dataclasses.replace(new(tenant), sale=first.sale, sale_id=first.sale_id)
    other = new(tenant)

    assert await insert(pool, first, other) == [first.id, other.id]
    assert await insert(pool, second) == [], "a part of a sale has one fulfillment"

    async with pool.acquire() as conn:
        found = await store.by_sale_ids(conn, tenant, [first.sale_id, other.sale_id, "S-none"])
    assert found == {first.sale_id: [first], other.sale_id: [other]}


async def test_a_split_sale_has_one_fulfillment_per_location_read_in_part_order(pool):
    tenant = uuid.uuid4()
    primary = new(tenant)
    elsewhere = [
        dataclasses.replace(
            new(tenant), sale=primary.sale, sale_id=primary.sale_id, location=where, part=part
        )
        for where, part in (("wh-c", 2), ("wh-b", 1))
    ]
    again = dataclasses.replace(elsewhere[0], id=uuid.uuid4(), tracking_number="FP-again")

    assert await insert(pool, *elsewhere, primary) == [*(f.id for f in elsewhere), primary.id]
    assert await insert(pool, again) == [], "the part at wh-c has its fulfillment"

    async with pool.acquire() as conn:
        found = await store.by_sale_ids(conn, tenant, [primary.sale_id])
    assert found == {primary.sale_id: [primary, elsewhere[1], elsewhere[0]]}


async def test_reads_see_only_the_tenants_own(pool):
    tenant, stranger = uuid.uuid4(), uuid.uuid4()
    mine = new(tenant)
    await insert(pool, mine)

    async with pool.acquire() as conn:
        assert await store.get(conn, tenant, mine.id) == mine
        assert await store.get(conn, stranger, mine.id) is None
        assert await store.get_many(conn, tenant, [mine.id, uuid.uuid4()]) == {mine.id: mine}
        assert await store.get_many(conn, stranger, [mine.id]) == {}
        assert await store.by_sale_ids(conn, stranger, [mine.sale_id]) == {}
        assert await store.by_sale_ids(conn, tenant, [mine.sale_id]) == {mine.sale_id: [mine]}


async def test_save_statuses_writes_status_and_version(pool):
    tenant = uuid.uuid4()
    a, b = new(tenant), new(tenant)
    await insert(pool, a, b)
    moved = dataclasses.replace(a, status="picking", version=2)

    async with pool.acquire() as conn:
        await store.save_statuses(conn, [moved])
        await store.save_statuses(conn, [])
        assert await store.get_many(conn, tenant, [a.id, b.id]) == {a.id: moved, b.id: b}


async def test_live_for_sales_leaves_out_canceled_and_other_tenants(pool):
    tenant, other = uuid.uuid4(), uuid.uuid4()
    live, canceled, theirs = new(tenant), new(tenant, status="canceled"), new(other)
    await insert(pool, live, canceled, theirs)

    async with pool.acquire() as conn:
        found = await store.live_for_sales(
            conn, [(tenant, live.sale), (tenant, canceled.sale), (tenant, theirs.sale)]
        )
    assert found == [live]


async def test_locking_reads_hold_the_rows_until_the_transaction_ends(pool):
    tenant = uuid.uuid4()
    f = new(tenant)
    await insert(pool, f)

    async with pool.acquire() as holder, holder.transaction():
        assert await store.get_many(holder, tenant, [f.id], lock=True) == {f.id: f}
        async with pool.acquire() as other:
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with other.transaction():
                    await other.execute("SET LOCAL lock_timeout = '50ms'")
                    await store.live_for_sales(other, [(tenant, f.sale)], lock=True)
    async with pool.acquire() as conn, conn.transaction():
        assert await store.live_for_sales(conn, [(tenant, f.sale)], lock=True) == [f]


async def test_save_statuses_if_unchanged_writes_only_over_the_version_it_read(pool):
    tenant = uuid.uuid4()
    f, g = new(tenant), new(tenant)
    await insert(pool, f, g)
    await pool.execute("DELETE FROM fulfilment.outbox WHERE key LIKE $1", f"{tenant}:%")
    picking = dataclasses.replace(f, status="picking", version=2)
    packed_from_stale_read = dataclasses.replace(f, status="packed", version=2)
    g_picking = dataclasses.replace(g, status="picking", version=2)

    async with pool.acquire() as conn:
        assert await store.save_statuses_if_unchanged(
            conn, tenant, [(picking, events.fulfillment_status_changed(picking, f.status))]
        ) == {f.id}
        assert await store.save_statuses_if_unchanged(
            conn,
            tenant,
            [
                (
                    packed_from_stale_read,
                    events.fulfillment_status_changed(packed_from_stale_read, f.status),
                ),
                (g_picking, events.fulfillment_status_changed(g_picking, g.status)),
            ],
        ) == {g.id}, "the stale one is left, the other written"
        assert (
            await store.save_statuses_if_unchanged(
                conn,
                uuid.uuid4(),
                [(g_picking, events.fulfillment_status_changed(g_picking, g.status))],
            )
            == set()
        ), "another tenant's is not written"
        assert await store.get(conn, tenant, f.id) == picking
        assert await store.get(conn, tenant, g.id) == g_picking
    published = await pool.fetch(
        "SELECT payload FROM fulfilment.outbox WHERE key LIKE $1 ORDER BY seq", f"{tenant}:%"
    )
    assert [
        (decode_event(r["payload"]).data.id, decode_event(r["payload"]).data.status)
        for r in published
    ] == [
        (f.id, "picking"),
        (g.id, "picking"),
    ]
