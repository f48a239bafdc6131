"""Routed sales through the reservation use cases on a real, migrated PostgreSQL: mixed
batches, releases and commits of split reservations, routed backorders retried."""

import uuid
from uuid import UUID

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import in_transaction
from fulfilkit.received import decode_event
from stock.domain import SaleToReserve
from stock.usecases import catalogue, integrity, levels, reservations
from stock.usecases.reservations import SaleChange

pytestmark = pytest.mark.integration


def routed(tenant: UUID, *lines: tuple[str, int], allow_split: bool = True) -> SaleToReserve:
    return SaleToReserve(
        uuid.uuid4(), f"S-{uuid.uuid4().hex[:6]}", tenant, None, lines, 1, allow_split
    )


def single(tenant: UUID, location: str, *lines: tuple[str, int]) -> SaleToReserve:
    return SaleToReserve(uuid.uuid4(), f"S-{uuid.uuid4().hex[:6]}", tenant, location, lines, 1)


def apply(pool: asyncpg.Pool, *changes: SaleChange):
    return in_transaction(pool, lambda conn: reservations.reserve_sales(conn, list(changes)))


async def reserved_events(pool: asyncpg.Pool, sale: SaleToReserve, type_: str) -> list:
    rows = await pool.fetch(
        "SELECT payload FROM stock.outbox WHERE event_type = $1 AND key = $2 ORDER BY seq",
        type_,
        c.sale_key(sale.tenant_id, sale.sale),
    )
    return [decode_event(bytes(r["payload"])).data for r in rows]


async def figures(pool: asyncpg.Pool, tenant: UUID) -> dict[tuple[str, str], tuple[int, int]]:
    rows = await pool.fetch(
        "SELECT location_id, sku, quantity, reserved FROM stock.stock_records WHERE tenant_id = $1",
        tenant,
    )
    return {(r["location_id"], r["sku"]): (r["quantity"], r["reserved"]) for r in rows}


async def test_a_batch_mixing_routed_and_single_sales_splits_the_routed_ones(pool, tenant, stocked):
    await catalogue.create_location(pool, tenant, "a", "A", None, routing_priority=0)
    await catalogue.create_location(pool, tenant, "b", "B", None, routing_priority=1)
    await stocked("X", 5, "a")
    await stocked("Y", 5, "b")
    first, second = routed(tenant, ("X", 1), ("Y", 1)), single(tenant, "a", ("X", 1))
    third = routed(tenant, ("X", 1), ("Y", 2))
    await apply(pool, *(SaleChange("created", s) for s in (second, first, third)))
    [data] = await reserved_events(pool, first, c.STOCK_RESERVED)
    assert data.location_id == "a"
    assert [(ln.sku, ln.quantity, ln.location_id) for ln in data.lines] == [
        ("X", 1, None),
        ("Y", 1, "b"),
    ]
    assert [p.location_id for p in data.other_locations] == ["b"]
    assert data.sale_version == 1
    [data] = await reserved_events(pool, third, c.STOCK_RESERVED)
    assert data.location_id == "b"  # 2 units there, 1 at a
    assert await figures(pool, tenant) == {("a", "X"): (5, 3), ("b", "Y"): (5, 3)}
    # a cancel releases every part, a shipment commits every part
    await apply(pool, SaleChange("canceled", first), SaleChange("shipped", third))
    [released] = await reserved_events(pool, first, c.STOCK_RELEASED)
    assert [(ln.sku, ln.location_id) for ln in released.lines] == [("X", None), ("Y", "b")]
    [committed] = await reserved_events(pool, third, c.STOCK_COMMITTED)
    assert committed.location_id == "b" and committed.other_locations[0].location_id == "a"
    assert await figures(pool, tenant) == {("a", "X"): (4, 1), ("b", "Y"): (3, 0)}
    report = await integrity.check_integrity(pool, tenant)
    assert report.ok, report


async def test_a_routed_backorder_waits_at_the_default_and_a_restock_elsewhere_fills_it(
    pool, tenant, stocked
):
    await catalogue.create_location(
        pool, tenant, "home", "Home", None, is_default=True, routing_priority=5
    )
    await catalogue.create_location(pool, tenant, "far", "Far", None, routing_priority=1)
    await stocked("X", 1, "home")
    far = await stocked("X", 0, "far")
    sale = routed(tenant, ("X", 3))
    await apply(pool, SaleChange("created", sale))
    [failed] = await reserved_events(pool, sale, c.STOCK_RESERVATION_FAILED)
    assert (failed.location_id, failed.sale_version) == ("home", 1)
    queue = await pool.fetch(
        "SELECT location_id, routed, allow_split, sale_version FROM stock.backorders"
        " WHERE tenant_id = $1",
        tenant,
    )
    assert [tuple(r) for r in queue] == [("home", True, True, 1)]
    update = [levels.LevelUpdate(5, record_id=far.id)]
    await in_transaction(pool, lambda conn: levels.update_stock(conn, tenant, update, "test"))
    woken = await pool.fetch(
        "SELECT location_id FROM stock.backorder_wakeups WHERE tenant_id = $1", tenant
    )
    assert {r["location_id"] for r in woken} == {"far", "home"}
    while await in_transaction(
        pool, lambda conn: reservations.retry_backorders(conn, tenant, "home")
    ):
        pass
    [data] = await reserved_events(pool, sale, c.STOCK_RESERVED)
    assert (data.location_id, [ln.quantity for ln in data.lines]) == ("far", [3])
    assert await figures(pool, tenant) == {("home", "X"): (1, 0), ("far", "X"): (5, 3)}
    assert not await pool.fetch("SELECT 1 FROM stock.backorders WHERE tenant_id = $1", tenant)
