"""Bundles on a real, migrated PostgreSQL: components refused (cycles, unknown SKUs), a
bundle sale reserving its components in the reservation's transaction (and waiting as its
components), the derived availability, and builds with their ledger pair."""

import uuid
from uuid import UUID

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import in_transaction
from fulfilkit.errors import Conflict, Invalid
from fulfilkit.received import decode_event
from stock.domain import SaleToReserve
from stock.usecases import bundles, catalogue, levels, reservations
from stock.usecases.reservations import SaleChange

pytestmark = pytest.mark.integration


def sale(tenant: UUID, *lines: tuple[str, int]) -> SaleToReserve:
    return SaleToReserve(uuid.uuid4(), f"S-{uuid.uuid4().hex[:6]}", tenant, "wh-1", lines)


async def reserve(pool: asyncpg.Pool, *sales: SaleToReserve) -> None:
    changes = [SaleChange("created", s) for s in sales]
    await in_transaction(pool, lambda conn: reservations.reserve_sales(conn, changes))


async def reserved_of(pool: asyncpg.Pool, tenant: UUID, sku: str) -> int:
    return await pool.fetchval(
        "SELECT reserved FROM stock.stock_records WHERE tenant_id = $1 AND sku = $2", tenant, sku
    )


def kit(*parts: tuple[str, int]) -> list[dict]:
    return [{"sku": s, "quantity": q} for s, q in parts]


async def test_components_are_refused_with_pointers_and_cycles_at_any_depth(pool, tenant, stocked):
    await stocked("A", 1)
    await catalogue.create_product(pool, tenant, "C", "C")
    await catalogue.create_product(pool, tenant, "KIT", "Kit", components=kit(("C", 2)))
    await catalogue.create_product(pool, tenant, "BOX", "Box", components=kit(("KIT", 1)))
    with pytest.raises(Invalid) as refused:
        await catalogue.update_product(pool, tenant, "C", {"components": kit(("BOX", 1))})
    assert refused.value.errors == [
        {"field": "/components/0/sku", "message": "'BOX' contains 'C': bundles cannot form a cycle"}
    ]
    with pytest.raises(Invalid) as unknown:
        await catalogue.create_product(pool, tenant, "X", "X", components=kit(("A", 1), ("Z", 1)))
    assert [e["field"] for e in unknown.value.errors] == ["/components/1/sku"]
    # a product with stock keeps its components as they are
    with pytest.raises(Conflict):
        await catalogue.update_product(pool, tenant, "A", {"assembled": True})


async def test_a_bundle_sale_reserves_its_components_or_waits_as_them(pool, tenant, stocked):
    await stocked("A", 5)
    await stocked("B", 5)
    await catalogue.create_product(pool, tenant, "KIT", "Kit", components=kit(("A", 2), ("B", 1)))
    await catalogue.create_product(pool, tenant, "BOX", "Box", components=kit(("KIT", 1), ("B", 1)))
    fits, short = sale(tenant, ("BOX", 2)), sale(tenant, ("KIT", 1), ("A", 1))
    await reserve(pool, fits, short)
    assert (await reserved_of(pool, tenant, "A"), await reserved_of(pool, tenant, "B")) == (4, 4)
    lines = await pool.fetch(
        "SELECT l.sku, l.quantity FROM stock.reservation_lines l JOIN stock.reservations r"
        " ON r.id = l.reservation_id WHERE r.tenant_id = $1 ORDER BY l.sku",
        tenant,
    )
    assert [tuple(r) for r in lines] == [("A", 4), ("B", 4)]
    queued = await pool.fetchval(
        "SELECT lines FROM stock.backorders WHERE tenant_id = $1 AND sale = $2", tenant, short.sale
    )
    assert queued == [
        {"sku": "A", "quantity": 2},
        {"sku": "B", "quantity": 1},
        {"sku": "A", "quantity": 1},
    ]
    rows = await pool.fetch(
        "SELECT payload FROM stock.outbox WHERE convert_from(payload, 'UTF8') LIKE $1 ORDER BY seq",
        f"%{short.sale}%",
    )
    [failed] = [
        e
        for r in rows
        if (e := decode_event(bytes(r["payload"]))).type == c.STOCK_RESERVATION_FAILED
    ]
    assert [(s.sku, s.requested, s.available, s.reason) for s in failed.data.shortfalls] == [
        ("A", 1, 1, "insufficient_stock"),
        ("KIT", 1, 0, "insufficient_stock"),
    ]
    [level] = await in_transaction(pool, lambda conn: bundles.derived_levels(conn, tenant, ["KIT"]))
    assert (level.location_id, level.sku, level.available) == ("wh-1", "KIT", 0)


async def test_a_build_is_a_ledger_pair_with_one_reference(pool, tenant, stocked):
    await stocked("A", 5)
    await catalogue.create_location(pool, tenant, "wh-2", "second")
    await catalogue.create_product(
        pool, tenant, "KIT", "Kit", components=kit(("A", 2)), assembled=True
    )

    async def build(quantity: int, at: str = "wh-1") -> bundles.Build:
        return await in_transaction(
            pool, lambda conn: bundles.build_bundle(conn, tenant, "KIT", at, quantity, "test")
        )

    made = await build(2)
    assert (made.bundle.quantity, [r.quantity for r in made.components]) == (2, [1])
    rows, _ = await levels.list_movements(pool, tenant, reference=made.build_id, limit=10, offset=0)
    assert sorted((m.sku, m.reason, m.quantity_change) for m in rows) == [
        ("A", "build", -4),
        ("KIT", "build", 2),
    ]
    with pytest.raises(Conflict):
        await build(1)
    with pytest.raises(Conflict):
        await build(1, "wh-2")  # no components there
    back = await build(-2)
    assert (back.bundle.quantity, [r.quantity for r in back.components]) == (0, [5])
