"""Edits of a sale's lines or location through the reservation use case on a real, migrated
PostgreSQL: the old reservation (or queue entry) goes and the new lines are reserved in the
same transaction, edits mixed with creations and cancels in one batch, edits not newer than
what stock answered, and a sale edited short retried after a restock."""

import asyncio
import dataclasses
import uuid
from uuid import UUID

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import in_transaction
from fulfilkit.received import decode_event
from stock.domain import SaleToReserve
from stock.usecases import integrity, levels, reservations
from stock.usecases.reservations import SaleChange
from tests.support import eventually

pytestmark = pytest.mark.integration


def sale(tenant: UUID, location: str | None, *lines: tuple[str, int]) -> SaleToReserve:
    return SaleToReserve(uuid.uuid4(), f"S-{uuid.uuid4().hex[:6]}", tenant, location, lines, 1)


def edited(
    of: SaleToReserve, version: int, *lines: tuple[str, int], location: str | None = "keep"
) -> SaleChange:
    """The sale as `sale.updated` at `version` carries it: new lines, maybe a new location."""
    where = of.location_id if location == "keep" else location
    return SaleChange(
        "edited", dataclasses.replace(of, lines=lines, version=version, location_id=where)
    )


def apply(pool: asyncpg.Pool, *changes: SaleChange):
    return in_transaction(pool, lambda conn: reservations.reserve_sales(conn, list(changes)))


async def outcomes(pool: asyncpg.Pool, s: SaleToReserve) -> list[tuple[str, int | None]]:
    """(event type, sale_version) of each reservation outcome published for the sale."""
    rows = await pool.fetch(
        "SELECT event_type, payload FROM stock.outbox WHERE key = $1 ORDER BY seq",
        c.sale_key(s.tenant_id, s.sale),
    )
    return [(r["event_type"], decode_event(bytes(r["payload"])).data.sale_version) for r in rows]


async def held(pool: asyncpg.Pool, s: SaleToReserve) -> tuple[str, int | None, list] | None:
    """The sale's reservation: status, sale_version, lines (sku, quantity, location)."""
    row = await pool.fetchrow(
        "SELECT r.status, r.sale_version, coalesce((SELECT array_agg((l.sku, l.quantity,"
        " k.location_id)::text ORDER BY l.sku, k.location_id) FROM stock.reservation_lines l"
        " JOIN stock.stock_records k ON k.id = l.stock_record_id WHERE l.reservation_id = r.id),"
        " '{}') AS lines FROM stock.reservations r WHERE r.tenant_id = $1 AND r.sale = $2",
        s.tenant_id,
        s.sale,
    )
    return None if row is None else (row["status"], row["sale_version"], list(row["lines"]))


async def queued(pool: asyncpg.Pool, s: SaleToReserve) -> list[tuple[str, list, int | None]]:
    rows = await pool.fetch(
        "SELECT location_id, lines, sale_version FROM stock.backorders"
        " WHERE tenant_id = $1 AND sale = $2",
        s.tenant_id,
        s.sale,
    )
    return [
        (r["location_id"], [(ln["sku"], ln["quantity"]) for ln in r["lines"]], r["sale_version"])
        for r in rows
    ]


async def figures(pool: asyncpg.Pool, tenant: UUID) -> dict[tuple[str, str], tuple[int, int]]:
    rows = await pool.fetch(
        "SELECT location_id, sku, quantity, reserved FROM stock.stock_records WHERE tenant_id = $1",
        tenant,
    )
    return {(r["location_id"], r["sku"]): (r["quantity"], r["reserved"]) for r in rows}


async def clean(pool: asyncpg.Pool, tenant: UUID) -> None:
    report = await integrity.check_integrity(pool, tenant)
    assert report.ok, report


async def test_an_edit_rewrites_the_one_reservation_in_place(pool, tenant, stocked):
    await stocked("X", 5, "wh-1")
    await stocked("Y", 5, "wh-1")
    s = sale(tenant, "wh-1", ("X", 2))
    await apply(pool, SaleChange("created", s))
    [before] = await pool.fetch(
        "SELECT id, version FROM stock.reservations WHERE sale = $1", s.sale
    )
    await apply(pool, edited(s, 3, ("X", 1), ("Y", 4)))
    assert await held(pool, s) == ("active", 3, ["(X,1,wh-1)", "(Y,4,wh-1)"])
    [after] = await pool.fetch("SELECT id, version FROM stock.reservations WHERE sale = $1", s.sale)
    assert (after["id"], after["version"]) == (before["id"], before["version"] + 1)
    assert await figures(pool, tenant) == {("wh-1", "X"): (5, 1), ("wh-1", "Y"): (5, 4)}
    assert await outcomes(pool, s) == [(c.STOCK_RESERVED, 1), (c.STOCK_RESERVED, 3)]
    await clean(pool, tenant)


async def test_an_edit_not_newer_than_what_stock_answered_changes_nothing(pool, tenant, stocked):
    await stocked("X", 5, "wh-1")
    s = sale(tenant, "wh-1", ("X", 2))
    await apply(pool, SaleChange("created", s), edited(s, 3, ("X", 3)))
    await apply(pool, edited(s, 3, ("X", 5)), edited(s, 2, ("X", 1)))  # replayed, older
    assert await held(pool, s) == ("active", 3, ["(X,3,wh-1)"])
    assert await figures(pool, tenant) == {("wh-1", "X"): (5, 3)}
    assert await outcomes(pool, s) == [(c.STOCK_RESERVED, 1), (c.STOCK_RESERVED, 3)]
    # the same for a sale waiting in the queue
    w = sale(tenant, "wh-1", ("X", 9))
    await apply(pool, SaleChange("created", w), edited(w, 4, ("X", 8)))
    await apply(pool, edited(w, 4, ("X", 1)), edited(w, 3, ("X", 1)))
    assert await queued(pool, w) == [("wh-1", [("X", 8)], 4)]
    assert await held(pool, w) is None
    await clean(pool, tenant)


async def test_an_edit_short_gives_back_what_it_held_and_waits_until_a_restock(
    pool, tenant, stocked
):
    record = await stocked("X", 5, "wh-1")
    s = sale(tenant, "wh-1", ("X", 2))
    other = sale(tenant, "wh-1", ("X", 3))
    await apply(pool, SaleChange("created", s), SaleChange("created", other))
    await apply(pool, edited(other, 2, ("X", 6)))  # gives back 3; 6 do not fit in 3
    assert await held(pool, other) is None  # no row while it waits, as a sale created short
    assert await queued(pool, other) == [("wh-1", [("X", 6)], 2)]
    assert await outcomes(pool, other) == [
        (c.STOCK_RESERVED, 1),
        (c.STOCK_RESERVATION_FAILED, 2),
    ]
    assert await figures(pool, tenant) == {("wh-1", "X"): (5, 2)}
    update = [levels.LevelUpdate(15, record_id=record.id)]  # a count: 15 on hand
    await in_transaction(pool, lambda conn: levels.update_stock(conn, tenant, update, "test"))
    while await in_transaction(
        pool, lambda conn: reservations.retry_backorders(conn, tenant, "wh-1")
    ):
        pass
    assert await held(pool, other) == ("active", 2, ["(X,6,wh-1)"])
    assert await queued(pool, other) == []
    assert await figures(pool, tenant) == {("wh-1", "X"): (15, 8)}
    await clean(pool, tenant)


async def test_edits_mixed_with_creations_and_cancels_in_one_batch(pool, tenant, stocked):
    await stocked("X", 10, "wh-1")
    await stocked("X", 10, "wh-2")
    a, b, c_ = (sale(tenant, "wh-1", ("X", 2)) for _ in range(3))
    await apply(
        pool,
        SaleChange("created", a),
        edited(a, 2, ("X", 3), location="wh-2"),  # created and moved in one batch
        SaleChange("created", b),
        edited(b, 2, ("X", 4)),
        SaleChange("canceled", dataclasses.replace(b, version=3)),  # edited, then canceled
        SaleChange("created", c_),
        edited(c_, 2, ("X", 30)),  # created, then edited short
    )
    assert await held(pool, a) == ("active", 2, ["(X,3,wh-2)"])
    assert (await held(pool, b))[0] == "released"
    assert await held(pool, c_) is None
    assert await queued(pool, c_) == [("wh-1", [("X", 30)], 2)]
    assert await figures(pool, tenant) == {("wh-1", "X"): (10, 0), ("wh-2", "X"): (10, 3)}
    # a queued sale edited to fit leaves the queue; one edited short again is queued once
    await apply(pool, edited(c_, 3, ("X", 31)), edited(c_, 4, ("X", 5)))
    assert await queued(pool, c_) == []
    assert await held(pool, c_) == ("active", 4, ["(X,5,wh-1)"])
    await clean(pool, tenant)


async def test_an_edit_a_product_refuses_leaves_a_tombstone(pool, tenant, stocked):
    await stocked("X", 5, "wh-1")
    await stocked("D", 1, "wh-1", backorders="deny")
    s = sale(tenant, "wh-1", ("X", 2))
    await apply(pool, SaleChange("created", s), edited(s, 3, ("X", 2), ("D", 2)))
    assert await held(pool, s) == ("released", 3, [])
    assert await queued(pool, s) == []
    assert await figures(pool, tenant) == {("wh-1", "X"): (5, 0), ("wh-1", "D"): (1, 0)}
    assert await outcomes(pool, s) == [(c.STOCK_RESERVED, 1), (c.STOCK_RESERVATION_FAILED, 3)]
    # orders cancels it: nothing more to release
    await apply(pool, SaleChange("canceled", dataclasses.replace(s, version=4)))
    assert await held(pool, s) == ("released", 3, [])
    await clean(pool, tenant)


async def test_a_queued_sale_edited_under_a_cap_does_not_count_its_old_lines(pool, tenant, stocked):
    await stocked("C", 0, "wh-1", backorders={"cap": 3})
    s = sale(tenant, "wh-1", ("C", 3))
    await apply(pool, SaleChange("created", s))
    assert await queued(pool, s) == [("wh-1", [("C", 3)], 1)]
    await apply(pool, edited(s, 2, ("C", 2)))  # 2 of a cap of 3: its own 3 are gone
    assert await queued(pool, s) == [("wh-1", [("C", 2)], 2)]
    assert await outcomes(pool, s) == [
        (c.STOCK_RESERVATION_FAILED, 1),
        (c.STOCK_RESERVATION_FAILED, 2),
    ]
    await clean(pool, tenant)


async def test_an_edit_of_a_queued_sale_waits_for_a_retry_holding_its_old_records(
    pool, tenant, stocked
):
    """A retry of a queue locks the records of its sales' lines, then their queue entries;
    an edit of a queued sale to lines elsewhere locks those old records too, so the two
    never both decide about the sale (the retry reserving the old lines, the edit queuing
    or reserving the new ones)."""
    old = await stocked("X", 0, "wh-1")
    await stocked("Y", 5, "wh-2")
    s = sale(tenant, "wh-1", ("X", 2))
    await apply(pool, SaleChange("created", s))
    assert await queued(pool, s) == [("wh-1", [("X", 2)], 1)]
    async with pool.acquire() as retry, retry.transaction():
        await retry.execute("SELECT FROM stock.stock_records WHERE id = $1 FOR UPDATE", old.id)
        editing = asyncio.create_task(apply(pool, edited(s, 2, ("Y", 1), location="wh-2")))
        await eventually(
            lambda: pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database() AND query LIKE '%stock_records%'"
            ),
            lambda n: n >= 1,
            what="the edit waiting for the old record",
        )
        assert not editing.done()
    await editing
    assert await held(pool, s) == ("active", 2, ["(Y,1,wh-2)"])
    assert await queued(pool, s) == []
    await clean(pool, tenant)
