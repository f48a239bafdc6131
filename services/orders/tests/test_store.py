"""The store's queries on a real PostgreSQL."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from fulfilkit import contracts as c
from fulfilkit.outbox import Keyed
from orders import store
from orders.domain import NewSale, Sale, open_sale, transition

pytestmark = pytest.mark.integration


def new(tenant: uuid.UUID, sale_id: str, channel: str = "web", at: datetime | None = None) -> Sale:
    order = NewSale(
        sale_id=sale_id,
        shop={"channel": channel, "shop_name": "Shop"},
        location_id="wh-1",
        lines=[{"sku": "A", "quantity": 1}],
        shipping_address={"city": "Ghent"},
    )
    return open_sale(tenant, order, at or datetime.now(UTC))


def keyed(sale: Sale, event_type: str = c.SALE_CREATED) -> Keyed:
    data = c.SaleSnapshot(
        id=sale.id,
        sale_id=sale.sale_id,
        status=sale.status,  # type: ignore[arg-type]
        version=sale.version,
        shop=c.Shop(**sale.shop),
        location_id=sale.location_id,
        lines=[c.SaleLine(**line) for line in sale.lines],
        created_at=sale.created_at or datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )
    if event_type == c.SALE_STATUS_CHANGED:
        data = c.SaleStatusChanged(**data.model_dump(), previous_status="awaiting_stock")
    event = c.make_event(
        source="/orders", type=event_type, tenant_id=sale.tenant_id, subject="s", data=data
    )
    return c.sale_key(sale.tenant_id, sale.id), event


async def insert(pool, *sales: Sale) -> set[uuid.UUID]:
    async with pool.acquire() as conn:
        return await store.insert_sales(conn, sales, "tester", [keyed(s) for s in sales])


async def outbox(pool, tenant: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT payload FROM orders.outbox WHERE key LIKE $1 ORDER BY seq", f"{tenant}:%"
    )
    return [orjson.loads(r["payload"])["data"]["sale_id"] for r in rows]


async def test_insert_leaves_out_taken_sale_ids_with_their_history_and_event(pool, tenant):
    first, taken = new(tenant, "S-1"), new(tenant, "S-1")
    second = new(tenant, "S-2")
    assert await insert(pool, first) == {first.id}
    assert await insert(pool, taken, second) == {second.id}
    async with pool.acquire() as conn:
        found = await store.sales_with_history(conn, [first.id, taken.id, second.id])
    assert set(found) == {first.id, second.id}
    sale, history = found[second.id]
    assert (sale.sale_id, sale.status, sale.version, sale.shipping_address) == (
        "S-2",
        "awaiting_stock",
        1,
        {"city": "Ghent"},
    )
    assert [(h["from_status"], h["to_status"], h["reason"], h["actor"]) for h in history] == [
        (None, "awaiting_stock", "created", "tester")
    ]
    assert await outbox(pool, tenant) == ["S-1", "S-2"]
    async with pool.acquire() as conn:
        assert await store.insert_sales(conn, [], "tester", []) == set()


async def test_sales_naming_a_sku_outside_the_catalogue_are_not_written_at_all(pool, tenant):
    one, two = new(tenant, "S-1"), new(tenant, "S-2")
    async with pool.acquire() as conn:
        written = await store.insert_sales_of_known_skus(
            conn, [one, two], "tester", [keyed(one), keyed(two)], {"A", "B", "C"}
        )
        assert written == (set(), {"B", "C"})  # the tenant's catalogue holds only "A"
        assert await store.sales_with_history(conn, [one.id, two.id]) == {}
        assert await outbox(pool, tenant) == []
        assert await store.known_skus(conn, tenant, {"A", "B"}) == {"A"}
        await store.add_to_catalogue(conn, [(tenant, "B"), (tenant, "C"), (tenant, "B")])
        written = await store.insert_sales_of_known_skus(
            conn, [one, two], "tester", [keyed(one), keyed(two)], {"A", "B", "C"}
        )
        assert written == ({one.id, two.id}, set())
    assert await outbox(pool, tenant) == ["S-1", "S-2"]


async def test_locks_find_sales_by_id_and_by_the_tenants_sale_id(pool, tenant):
    one, two = new(tenant, "S-1"), new(tenant, "S-2")
    await insert(pool, one, two)
    async with pool.acquire() as conn, conn.transaction():
        by_id = await store.lock_sales(conn, [two.id, one.id, two.id, uuid.uuid4()])
        by_sale_id = await store.lock_sales_by_sale_id(conn, tenant, ["S-2", "S-9"])
        elsewhere = await store.lock_sales_by_sale_id(conn, uuid.uuid4(), ["S-1"])
    assert {i: s.sale_id for i, s in by_id.items()} == {one.id: "S-1", two.id: "S-2"}
    assert {k: s.id for k, s in by_sale_id.items()} == {"S-2": two.id}
    assert elsewhere == {}


async def test_a_locked_sale_waits_for_the_lock_holder(pool, tenant):
    sale = new(tenant, "S-1")
    await insert(pool, sale)
    async with pool.acquire() as holder, holder.transaction():
        await store.lock_sales(holder, [sale.id])
        async with pool.acquire() as other, other.transaction():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(store.lock_sales(other, [sale.id]), 0.2)


async def test_save_writes_sales_history_and_events_and_notifies_the_status_channel(pool, tenant):
    one, two, three = new(tenant, "S-1"), new(tenant, "S-2"), new(tenant, "S-3")
    await insert(pool, one, two, three)
    three.status = "pending"  # as if reserved: its claim is no outcome, and wakes nobody
    notified: list[str] = []
    async with pool.acquire() as listener:

        def heard(_conn, _pid, _channel, payload: str) -> None:
            notified.append(payload)

        await listener.add_listener(store.STATUS_CHANNEL, heard)
        change = transition(one, "pending", "stock_reserved")
        claimed = transition(three, "in_fulfillment", "shipping_init")
        one.reservation = {"status": "active"}
        two.fulfillments = [{"id": "f-1", "status": "picking"}]  # no status change
        async with pool.acquire() as conn, conn.transaction():
            await store.save(
                conn,
                [one, two, three],
                [change, claimed],
                "orders:events",
                [keyed(one, c.SALE_STATUS_CHANGED)],
            )
        for _ in range(100):
            if notified:
                break
            await asyncio.sleep(0.01)
        await listener.remove_listener(store.STATUS_CHANNEL, heard)
    assert notified == [str(one.id)]
    async with pool.acquire() as conn:
        found = await store.sales_with_history(conn, [one.id, two.id])
    saved, history = found[one.id]
    assert (saved.status, saved.version, saved.reservation) == ("pending", 2, {"status": "active"})
    assert [(h["from_status"], h["to_status"], h["reason"], h["actor"]) for h in history][-1] == (
        "awaiting_stock",
        "pending",
        "stock_reserved",
        "orders:events",
    )
    other, other_history = found[two.id]
    assert (other.status, other.fulfillments) == (
        "awaiting_stock",
        [{"id": "f-1", "status": "picking"}],
    )
    assert len(other_history) == 1
    assert await outbox(pool, tenant) == ["S-1", "S-2", "S-3", "S-1"]
    async with pool.acquire() as conn:
        await store.save(conn, [], [], "tester", [])  # nothing to write


async def test_settled_are_the_sales_whose_reservation_outcome_is_in(pool, tenant):
    waiting, reserved = new(tenant, "S-1"), new(tenant, "S-2")
    await insert(pool, waiting, reserved)
    async with pool.acquire() as conn:
        change = transition(reserved, "backordered", "stock_short")
        await store.save(conn, [reserved], [change], "tester", [])
        ids = [str(waiting.id), str(reserved.id), str(uuid.uuid4())]
        assert await store.settled(conn, ids) == [str(reserved.id)]


async def test_a_sale_with_history_is_found_by_the_tenants_sale_id(pool, tenant):
    sale = new(tenant, "S-1")
    await insert(pool, sale)
    async with pool.acquire() as conn:
        found = await store.sale_with_history(conn, tenant, "S-1")
        assert await store.sale_with_history(conn, uuid.uuid4(), "S-1") is None
        assert await store.sale_with_history(conn, tenant, "S-2") is None
    assert found is not None
    assert (found[0].id, [h["to_status"] for h in found[1]]) == (sale.id, ["awaiting_stock"])


async def test_list_filters_by_status_channel_and_time_and_pages_oldest_first(pool, tenant):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sales = [
        new(tenant, f"S-{i}", "web" if i % 2 else "shop", start + timedelta(hours=i))
        for i in range(5)
    ]
    await insert(pool, *sales)
    async with pool.acquire() as conn:
        change = transition(sales[1], "canceled", "other")
        await store.save(conn, [sales[1]], [change], "tester", [])

        async def listed(**given):
            query = {
                "statuses": [],
                "channel": None,
                "created_from": None,
                "created_to": None,
                "limit": 10,
                "offset": 0,
                **given,
            }
            found, total = await store.list_sales(conn, tenant, **query)
            return [s.sale_id for s in found], total

        assert await listed() == (["S-0", "S-1", "S-2", "S-3", "S-4"], 5)
        assert await listed(limit=2, offset=2) == (["S-2", "S-3"], 5)
        assert await listed(statuses=["canceled"]) == (["S-1"], 1)
        assert await listed(statuses=["canceled", "awaiting_stock"], channel="web") == (
            ["S-1", "S-3"],
            2,
        )
        assert await listed(
            created_from=start + timedelta(hours=1), created_to=start + timedelta(hours=3)
        ) == (["S-1", "S-2"], 2)
        assert await store.list_sales(
            conn,
            uuid.uuid4(),
            statuses=[],
            channel=None,
            created_from=None,
            created_to=None,
            limit=10,
            offset=0,
        ) == ([], 0)
