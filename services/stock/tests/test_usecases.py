"""Each stock use case on a real, migrated PostgreSQL: what a user would notice (records,
ledger rows, reservations, events in the outbox) and how each one refuses."""

import uuid
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import in_transaction
from fulfilkit.errors import Conflict, Duplicated, Invalid, NotFound
from fulfilkit.received import Event, decode_event
from stock.domain import SaleToReserve
from stock.usecases import catalogue, integrity, levels, reservations
from stock.usecases.levels import LevelChange, LevelUpdate
from stock.usecases.reservations import SaleChange

pytestmark = pytest.mark.integration


async def events_of(pool: asyncpg.Pool, tenant: UUID, type_: str | None = None) -> list[Event]:
    """The tenant's events in the outbox of `type_`, or without one, of stock levels and
    reservations (not the catalogue's `product.created`)."""
    rows = await pool.fetch(
        "SELECT payload FROM stock.outbox WHERE convert_from(payload, 'UTF8') LIKE $1 ORDER BY seq",
        f"%{tenant}%",
    )
    found = [decode_event(bytes(r["payload"])) for r in rows]
    return [e for e in found if e.type == type_ or (type_ is None and e.type != c.PRODUCT_CREATED)]


async def movements(pool: asyncpg.Pool, tenant: UUID, **filters: Any) -> list[tuple]:
    rows, _ = await levels.list_movements(pool, tenant, limit=100, offset=0, **filters)
    return [(m.sku, m.location_id, m.reason, m.quantity_change, m.reserved_change) for m in rows]


def fields(error: pytest.ExceptionInfo) -> list[str]:
    return [e["field"] for e in error.value.errors or []]


def in_tx(pool: asyncpg.Pool, use_case: Any, *args: Any) -> Any:
    """Run a use case that works in its caller's transaction, as a route or handler would."""
    return in_transaction(pool, lambda conn: use_case(conn, *args))


def sale(tenant: UUID, *lines: tuple[str, int], location: str = "wh-1") -> SaleToReserve:
    return SaleToReserve(uuid.uuid4(), f"S-{uuid.uuid4().hex[:6]}", tenant, location, lines)


async def reservation_of(pool: asyncpg.Pool, tenant: UUID, sold: SaleToReserve) -> str | None:
    return await pool.fetchval(
        "SELECT status FROM stock.reservations WHERE tenant_id = $1 AND sale = $2",
        tenant,
        sold.sale,
    )


async def queued(pool: asyncpg.Pool, tenant: UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT sale_id FROM stock.backorders WHERE tenant_id = $1 ORDER BY seq", tenant
    )
    return [r["sale_id"] for r in rows]


# Catalogue


async def test_create_product_refuses_a_duplicated_sku(pool, tenant):
    made = await catalogue.create_product(pool, tenant, "A", "Apple", min_level=3, is_bulky=True)
    assert (made.sku, made.name, made.min_level, made.is_bulky, made.version) == (
        "A",
        "Apple",
        3,
        True,
        1,
    )
    with pytest.raises(Duplicated):
        await catalogue.create_product(pool, tenant, "A", "Another apple")
    assert (await catalogue.create_product(pool, uuid.uuid4(), "A", "Theirs")).name == "Theirs"
    # announced once, for orders' copy of the catalogue, keyed by tenant and SKU
    [announced] = await events_of(pool, tenant, c.PRODUCT_CREATED)
    assert announced.subject == "product/A"
    assert announced.data.model_dump() == {
        "sku": "A",
        "name": "Apple",
        "ean": None,
        "unit_type": "unit",
        "min_level": 3,
        "is_bulky": True,
        "version": 1,
        "created_at": made.created_at,
        "updated_at": made.updated_at,
        "backorders": "allow",
        "out_of_stock_threshold": 0,
        "preorder": None,
        "infinite": False,
        # a bundle's fields, added later: their defaults
        "components": None,
        "assembled": False,
    }
    key = await pool.fetchval("SELECT key FROM stock.outbox WHERE event_id = $1", announced.id)
    assert key == f"{tenant}:product:A"


async def test_list_products_pages_by_sku(pool, tenant):
    for sku in ("C", "A", "B"):
        await catalogue.create_product(pool, tenant, sku, sku)
    page, total = await catalogue.list_products(pool, tenant, limit=2, offset=1)
    assert ([p.sku for p in page], total) == (["B", "C"], 3)


async def test_get_product_of_an_unknown_sku_is_not_found(pool, tenant):
    await catalogue.create_product(pool, tenant, "A", "Apple")
    assert (await catalogue.get_product(pool, tenant, "A")).name == "Apple"
    with pytest.raises(NotFound):
        await catalogue.get_product(pool, tenant, "Z")
    with pytest.raises(NotFound):
        await catalogue.get_product(pool, uuid.uuid4(), "A")


async def test_update_product_checks_the_version(pool, tenant):
    await catalogue.create_product(pool, tenant, "A", "Apple")
    changed = await catalogue.update_product(pool, tenant, "A", {"name": "Pear"}, 1)
    assert (changed.name, changed.version) == ("Pear", 2)
    with pytest.raises(Conflict):
        await catalogue.update_product(pool, tenant, "A", {"name": "Plum"}, 1)
    assert (await catalogue.update_product(pool, tenant, "A", {})).version == 2, "no change"
    with pytest.raises(NotFound):
        await catalogue.update_product(pool, tenant, "Z", {"name": "Plum"})
    with pytest.raises(ValueError, match="not a changeable field"):
        await catalogue.update_product(pool, tenant, "A", {"sku": "B"})


async def test_create_location_refuses_a_duplicated_id(pool, tenant):
    made = await catalogue.create_location(pool, tenant, "wh-1", "North", {"city": "Oslo"})
    assert (made.location_id, made.address, made.version) == ("wh-1", {"city": "Oslo"}, 1)
    with pytest.raises(Duplicated):
        await catalogue.create_location(pool, tenant, "wh-1", "South")


async def test_list_locations_pages_by_id(pool, tenant):
    for location in ("wh-2", "wh-1"):
        await catalogue.create_location(pool, tenant, location, location)
    page, total = await catalogue.list_locations(pool, tenant, limit=10, offset=0)
    assert ([loc.location_id for loc in page], total) == (["wh-1", "wh-2"], 2)


async def test_get_location_of_an_unknown_id_is_not_found(pool, tenant):
    await catalogue.create_location(pool, tenant, "wh-1", "North")
    assert (await catalogue.get_location(pool, tenant, "wh-1")).name == "North"
    with pytest.raises(NotFound):
        await catalogue.get_location(pool, tenant, "wh-9")


async def test_update_location_checks_the_version(pool, tenant):
    await catalogue.create_location(pool, tenant, "wh-1", "North")
    changed = await catalogue.update_location(pool, tenant, "wh-1", {"address": None}, 1)
    assert (changed.address, changed.version) == (None, 2)
    with pytest.raises(Conflict):
        await catalogue.update_location(pool, tenant, "wh-1", {"name": "South"}, 1)
    with pytest.raises(NotFound):
        await catalogue.update_location(pool, tenant, "wh-9", {"name": "South"})


# Stock records and levels


async def test_create_stock_record_opens_the_ledger_and_refuses_unknowns(pool, tenant, stocked):
    record = await stocked("A", 2, min_level=5)
    assert (record.quantity, record.reserved, record.available, record.version) == (2, 0, 2, 1)
    assert await movements(pool, tenant) == [("A", "wh-1", "audit", 2, 0)]
    assert [e.type for e in await events_of(pool, tenant)] == [c.STOCK_CHANGED, c.STOCK_LOW]
    with pytest.raises(Duplicated):
        await levels.create_stock_record(pool, tenant, "wh-1", "A", 1, "test")
    with pytest.raises(Invalid) as refused:
        await levels.create_stock_record(pool, tenant, "wh-1", "Z", 1, "test")
    assert fields(refused) == ["/sku", "/location_id"]
    with pytest.raises(Invalid):
        await levels.create_stock_record(pool, tenant, "nowhere", "A", 1, "test")


async def test_list_stock_records_filters_by_sku_and_location(pool, tenant, stocked):
    await stocked("A", 1)
    await stocked("B", 2)
    await stocked("A", 3, location="wh-2")
    everything, total = await levels.list_stock_records(pool, tenant, limit=10, offset=0)
    assert ([(r.location_id, r.sku) for r in everything], total) == (
        [("wh-1", "A"), ("wh-1", "B"), ("wh-2", "A")],
        3,
    )
    only, total = await levels.list_stock_records(
        pool, tenant, skus=["A"], locations=["wh-2"], limit=10, offset=0
    )
    assert ([r.quantity for r in only], total) == ([3], 1)


async def test_get_stock_record_of_another_tenant_is_not_found(pool, tenant, stocked):
    record = await stocked("A", 4)
    assert (await levels.get_stock_record(pool, tenant, record.id)).quantity == 4
    with pytest.raises(NotFound):
        await levels.get_stock_record(pool, uuid.uuid4(), record.id)


async def test_update_stock_counts_restocks_and_losses(pool, tenant, stocked):
    a = await stocked("A", 5)
    [counted] = await in_tx(
        pool, levels.update_stock, tenant, [LevelUpdate(7, record_id=a.id)], "t"
    )
    assert (counted.quantity, counted.version) == (7, 2)
    restock = LevelUpdate(3, "restock", location_id="wh-1", sku="A")
    loss = LevelUpdate(4, "loss", location_id="wh-1", sku="A")
    _, after = await in_tx(pool, levels.update_stock, tenant, [restock, loss], "t", "two at once")
    assert (after.quantity, after.version) == (6, 4)
    assert [m[2:] for m in await movements(pool, tenant)][1:] == [
        ("audit", 2, 0),
        ("restock", 3, 0),
        ("loss", -4, 0),
    ]


async def test_update_stock_creates_a_record_where_a_restock_lands(pool, tenant, stocked):
    await stocked("A", 0)
    await catalogue.create_location(pool, tenant, "wh-2", "South")
    [made] = await in_tx(
        pool,
        levels.update_stock,
        tenant,
        [LevelUpdate(2, "restock", location_id="wh-2", sku="A")],
        "t",
    )
    assert (made.location_id, made.quantity) == ("wh-2", 2)
    with pytest.raises(Invalid) as refused:
        await in_tx(
            pool,
            levels.update_stock,
            tenant,
            [LevelUpdate(1, "restock", location_id="wh-9", sku="Z")],
            "t",
        )
    assert fields(refused) == ["/sku", "/location_id"]


async def test_update_stock_refuses_all_when_one_is_stale_or_breaks_a_rule(pool, tenant, stocked):
    a, b = await stocked("A", 5), await stocked("B", 5)

    async def refused(*updates: LevelUpdate, error: type = Conflict) -> list[str]:
        with pytest.raises(error) as caught:
            await in_tx(pool, levels.update_stock, tenant, list(updates), "t")
        return fields(caught)

    assert await refused(
        LevelUpdate(1, record_id=a.id, at="/stock_records/0"),
        LevelUpdate(1, record_id=b.id, compare_quantity=4, at="/stock_records/1"),
    ) == ["/stock_records/1/compare_quantity"]
    assert await refused(LevelUpdate(1, record_id=a.id, version=2)) == ["/version"]
    assert await refused(
        LevelUpdate(1, record_id=a.id, at="/stock_records/0"),
        LevelUpdate(2, record_id=a.id, at="/stock_records/1"),
        error=Invalid,
    ) == ["/stock_records/1/id"]
    assert await refused(LevelUpdate(1, record_id=uuid.uuid4()), error=Invalid) == ["/id"]
    assert await refused(LevelUpdate(6, "loss", location_id="wh-1", sku="B")) == ["/quantity"]
    records, _ = await levels.list_stock_records(pool, tenant, limit=10, offset=0)
    assert [(r.quantity, r.version) for r in records] == [(5, 1), (5, 1)], "nothing changed"


async def test_an_available_count_adds_the_reservations_open_when_it_applies(pool, tenant, stocked):
    a = await stocked("A", 10)
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", sale(tenant, ("A", 3)))])
    # The warehouse counted 6 free units before a second sale reserved 2 more: those 2 are
    # still on the shelf, so on hand is 6 + the 5 reserved when the count lands.
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", sale(tenant, ("A", 2)))])
    count = LevelUpdate(6, record_id=a.id, basis="available", compare_quantity=5)
    [counted] = await in_tx(pool, levels.update_stock, tenant, [count], "t")
    assert (counted.quantity, counted.reserved, counted.available) == (11, 5, 6)
    assert [m[2:] for m in await movements(pool, tenant, reasons=["audit"])] == [
        ("audit", 10, 0),
        ("audit", 1, 0),
    ]

    with pytest.raises(Conflict) as stale:
        await in_tx(
            pool,
            levels.update_stock,
            tenant,
            [LevelUpdate(0, record_id=a.id, basis="available", compare_quantity=11)],
            "t",
        )
    assert stale.value.errors == [{"field": "/compare_quantity", "message": "available is now 6"}]
    # Zero available keeps the reserved units on hand; on hand below them is refused.
    [emptied] = await in_tx(
        pool, levels.update_stock, tenant, [LevelUpdate(0, record_id=a.id, basis="available")], "t"
    )
    assert (emptied.quantity, emptied.reserved, emptied.available) == (5, 5, 0)
    with pytest.raises(Conflict):
        await in_tx(pool, levels.update_stock, tenant, [LevelUpdate(4, record_id=a.id)], "t")


async def test_change_stock_adds_and_subtracts_all_or_none(pool, tenant, stocked):
    a, b = await stocked("A", 5), await stocked("B", 1)
    changed = await in_tx(
        pool, levels.change_stock, tenant, [LevelChange(a.id, 2), LevelChange(b.id, -1)], "t"
    )
    assert [r.quantity for r in changed] == [7, 0]
    with pytest.raises(Conflict) as refused:
        await in_tx(
            pool,
            levels.change_stock,
            tenant,
            [LevelChange(a.id, 1, "/stock_records/0"), LevelChange(b.id, -1, "/stock_records/1")],
            "t",
        )
    assert fields(refused) == ["/stock_records/1/quantity_change"]
    assert (await levels.get_stock_record(pool, tenant, a.id)).quantity == 7
    with pytest.raises(Invalid):
        await in_tx(pool, levels.change_stock, tenant, [LevelChange(uuid.uuid4(), 1)], "t")


async def test_transfer_stock_moves_units_in_one_transaction(pool, tenant, stocked):
    await stocked("A", 5)
    await catalogue.create_location(pool, tenant, "wh-2", "South")
    moved = await in_tx(pool, levels.transfer_stock, tenant, "A", "wh-1", "wh-2", 3, "t")
    assert (moved.source.quantity, moved.destination.quantity) == (2, 3)
    assert moved.transfer_id.startswith("transfer:")
    assert await movements(pool, tenant, reference=moved.transfer_id) == [
        ("A", "wh-1", "transfer", -3, 0),
        ("A", "wh-2", "transfer", 3, 0),
    ]
    with pytest.raises(Conflict):  # more than there is
        await in_tx(pool, levels.transfer_stock, tenant, "A", "wh-1", "wh-2", 3, "t")
    with pytest.raises(Invalid):
        await in_tx(pool, levels.transfer_stock, tenant, "A", "wh-1", "wh-1", 1, "t")
    with pytest.raises(Conflict):  # no stock of it at the source
        await in_tx(pool, levels.transfer_stock, tenant, "Z", "wh-1", "wh-2", 1, "t")
    with pytest.raises(Invalid) as refused:
        await in_tx(pool, levels.transfer_stock, tenant, "A", "wh-1", "wh-9", 1, "t")
    assert fields(refused) == ["/to_location_id"]


async def test_list_movements_filters_the_ledger(pool, tenant, stocked):
    a = await stocked("A", 5)
    await stocked("B", 1)
    await in_tx(pool, levels.change_stock, tenant, [LevelChange(a.id, -2)], "t")
    assert await movements(pool, tenant, reasons=["adjustment"]) == [
        ("A", "wh-1", "adjustment", -2, 0)
    ]
    assert len(await movements(pool, tenant, skus=["B"])) == 1
    _, total = await levels.list_movements(pool, tenant, limit=1, offset=0)
    assert total == 3


# Reservations


async def test_reserve_sales_reserves_every_line_or_backorders_the_sale(pool, tenant, stocked):
    a = await stocked("A", 3)
    await stocked("B", 1, is_bulky=True)
    fits, short = sale(tenant, ("A", 2), ("B", 1)), sale(tenant, ("A", 2))
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", s) for s in (fits, short)])
    assert await reservation_of(pool, tenant, fits) == "active"
    assert await reservation_of(pool, tenant, short) is None
    assert await queued(pool, tenant) == [short.sale_id]
    assert (await levels.get_stock_record(pool, tenant, a.id)).reserved == 2
    [reserved] = await events_of(pool, tenant, c.STOCK_RESERVED)
    assert [(ln.sku, ln.quantity, ln.is_bulky) for ln in reserved.data.lines] == [
        ("A", 2, False),
        ("B", 1, True),
    ]
    assert reserved.data.location == c.ReservationLocation(name="location wh-1", address=None)
    [failed] = await events_of(pool, tenant, c.STOCK_RESERVATION_FAILED)
    assert [(s.sku, s.requested, s.available, s.reason) for s in failed.data.shortfalls] == [
        ("A", 2, 1, "insufficient_stock")
    ]


async def test_reserve_sales_names_unknown_skus_and_locations(pool, tenant, stocked):
    await stocked("A", 3)
    unknown_sku, unknown_location = sale(tenant, ("Z", 1)), sale(tenant, ("A", 1), location="x")
    changes = [SaleChange("created", s) for s in (unknown_sku, unknown_location)]
    await in_tx(pool, reservations.reserve_sales, changes)
    reasons = [
        e.data.shortfalls[0].reason
        for e in await events_of(pool, tenant, c.STOCK_RESERVATION_FAILED)
    ]
    assert reasons == ["unknown_sku", "unknown_location"]


async def test_a_denied_backorder_reserves_nothing_queues_nothing_and_never_repeats(
    pool, tenant, stocked
):
    a = await stocked("A", 5)
    await stocked("B", 1, backorders="deny")
    refused = SaleChange("created", sale(tenant, ("A", 2), ("B", 2)))
    await in_tx(pool, reservations.reserve_sales, [refused])
    await in_tx(pool, reservations.reserve_sales, [refused])  # a replay
    assert (await levels.get_stock_record(pool, tenant, a.id)).reserved == 0
    assert await queued(pool, tenant) == []
    assert await reservation_of(pool, tenant, refused.sale) == "released"  # the tombstone
    [failed] = await events_of(pool, tenant, c.STOCK_RESERVATION_FAILED)
    assert [(s.sku, s.requested, s.available, s.reason) for s in failed.data.shortfalls] == [
        ("B", 2, 1, "backorder_denied")
    ]


async def test_a_cap_counts_what_waits_in_one_batch_and_across_batches(pool, tenant, stocked):
    await stocked("A", 0, backorders={"cap": 3})
    first, second, third = (sale(tenant, ("A", 2)), sale(tenant, ("A", 2)), sale(tenant, ("A", 1)))
    await in_tx(
        pool, reservations.reserve_sales, [SaleChange("created", s) for s in (first, second)]
    )
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", third)])
    assert await queued(pool, tenant) == [first.sale_id, third.sale_id]
    reasons = [
        e.data.shortfalls[0].reason
        for e in await events_of(pool, tenant, c.STOCK_RESERVATION_FAILED)
    ]
    assert reasons == ["insufficient_stock", "backorder_denied", "insufficient_stock"]


async def test_reserve_sales_replayed_reserves_once(pool, tenant, stocked):
    a = await stocked("A", 5)
    created = SaleChange("created", sale(tenant, ("A", 2)))
    await in_tx(pool, reservations.reserve_sales, [created])
    await in_tx(pool, reservations.reserve_sales, [created, created])
    assert (await levels.get_stock_record(pool, tenant, a.id)).reserved == 2
    assert len(await events_of(pool, tenant, c.STOCK_RESERVED)) == 1


async def test_reserve_sales_releases_canceled_and_commits_shipped(pool, tenant, stocked):
    a = await stocked("A", 5)
    canceled, shipped = sale(tenant, ("A", 1)), sale(tenant, ("A", 2))
    await in_tx(
        pool,
        reservations.reserve_sales,
        [SaleChange("created", canceled), SaleChange("created", shipped)],
    )
    await in_tx(
        pool,
        reservations.reserve_sales,
        [SaleChange("canceled", canceled), SaleChange("shipped", shipped)],
    )
    assert await reservation_of(pool, tenant, canceled) == "released"
    assert await reservation_of(pool, tenant, shipped) == "committed"
    record = await levels.get_stock_record(pool, tenant, a.id)
    assert (record.quantity, record.reserved) == (3, 0)
    [released] = await events_of(pool, tenant, c.STOCK_RELEASED)
    [committed] = await events_of(pool, tenant, c.STOCK_COMMITTED)
    where = c.ReservationLocation(name="location wh-1", address=None)
    assert released.data.location == committed.data.location == where
    # a late creation of a canceled sale reserves nothing (its tombstone remains)
    late = sale(tenant, ("A", 1))
    await in_tx(pool, reservations.reserve_sales, [SaleChange("canceled", late)])
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", late)])
    assert await reservation_of(pool, tenant, late) == "released"
    assert (await levels.get_stock_record(pool, tenant, a.id)).reserved == 0


async def test_reserve_sales_takes_a_canceled_sale_off_the_queue(pool, tenant, stocked):
    await stocked("A", 0)
    waiting = sale(tenant, ("A", 1))
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", waiting)])
    assert await queued(pool, tenant) == [waiting.sale_id]
    await in_tx(pool, reservations.reserve_sales, [SaleChange("canceled", waiting)])
    assert await queued(pool, tenant) == []


async def test_retry_backorders_reserves_in_queue_order_what_now_fits(pool, tenant, stocked):
    a = await stocked("A", 0)
    first, second = sale(tenant, ("A", 2)), sale(tenant, ("A", 2))
    await in_tx(
        pool,
        reservations.reserve_sales,
        [SaleChange("created", first), SaleChange("created", second)],
    )
    assert not await in_tx(pool, reservations.retry_backorders, tenant, "wh-1"), "no more rounds"
    assert await queued(pool, tenant) == [first.sale_id, second.sale_id], "nothing fits yet"
    await in_tx(pool, levels.change_stock, tenant, [LevelChange(a.id, 3)], "t")
    await catalogue.update_location(pool, tenant, "wh-1", {"address": {"city": "Oslo"}}, None)
    await in_tx(pool, reservations.retry_backorders, tenant, "wh-1")
    assert await reservation_of(pool, tenant, first) == "active"
    [reserved] = await events_of(pool, tenant, c.STOCK_RESERVED)
    assert reserved.data.location == c.ReservationLocation(
        name="location wh-1", address={"city": "Oslo"}
    ), "the location as it is when the units are reserved"
    assert await queued(pool, tenant) == [second.sale_id]
    assert await in_tx(pool, reservations.retry_backorders, tenant, "wh-1", 1), "a full round"


async def test_retry_woken_backorders_retries_where_stock_went_up(pool, tenant, stocked):
    a = await stocked("A", 0)
    waiting = sale(tenant, ("A", 1))
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", waiting)])
    await in_tx(pool, levels.change_stock, tenant, [LevelChange(a.id, 1)], "t")  # wakes wh-1
    assert await reservations.retry_woken_backorders(pool) >= 1
    assert await reservation_of(pool, tenant, waiting) == "active"
    assert await queued(pool, tenant) == []


async def test_wake_every_backorder_wakes_each_waiting_location(pool, tenant, stocked):
    await stocked("A", 0)
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", sale(tenant, ("A", 1)))])
    await reservations.retry_woken_backorders(pool)  # claims the wake-ups there are
    await reservations.wake_every_backorder(pool)
    woken = await pool.fetch(
        "SELECT location_id FROM stock.backorder_wakeups WHERE tenant_id = $1", tenant
    )
    assert [r["location_id"] for r in woken] == ["wh-1"]


# Integrity


async def test_check_integrity_finds_what_disagrees(pool, tenant, stocked):
    a = await stocked("A", 5)
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", sale(tenant, ("A", 2)))])
    assert (await integrity.check_integrity(pool, tenant)).ok
    await pool.execute("UPDATE stock.stock_records SET reserved = 1 WHERE id = $1", a.id)
    found = await integrity.check_integrity(pool, tenant)
    assert (found.ok, found.records_checked) == (False, 1)
    assert [(d.check, d.recorded, d.expected) for d in found.discrepancies] == [
        ("reserved_vs_reservations", 1, 2),
        ("reserved_vs_ledger", 1, 2),
    ]


async def test_rebuild_reserved_repairs_records_and_ledger(pool, tenant, stocked):
    a = await stocked("A", 5)
    await in_tx(pool, reservations.reserve_sales, [SaleChange("created", sale(tenant, ("A", 2)))])
    await pool.execute("UPDATE stock.stock_records SET reserved = 0 WHERE id = $1", a.id)
    repaired = await integrity.rebuild_reserved(pool, tenant)
    assert (repaired.repaired, repaired.ok) == (1, True)
    assert (await levels.get_stock_record(pool, tenant, a.id)).reserved == 2
    assert (await integrity.rebuild_reserved(pool, tenant)).repaired == 0
