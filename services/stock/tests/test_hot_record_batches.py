"""Two stock processes on one hot SKU: each consumer applies its own partitions' sales in
batches, and the batches meet on the one stock record's lock. They take turns on it, never
deadlock, never oversell, and every sale gets exactly one outcome, written by COPY as a
batch writes it (ledger rows, reservations, lines and events)."""

import asyncio
import uuid
from collections import Counter
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import in_transaction
from fulfilkit.received import decode_event
from stock.domain import SaleToReserve
from stock.usecases import integrity, reservations
from stock.usecases.reservations import SaleChange

pytestmark = pytest.mark.integration

UNITS = 300
BATCHES = 12  # each consumer's
BATCH = 40  # sales a batch: 2 x 12 x 40 = 960 one-unit sales for 300 units


def sale(tenant: UUID, n: int) -> SaleToReserve:
    return SaleToReserve(uuid.uuid4(), f"S-{n:04d}", tenant, "wh-1", (("HOT", 1),))


async def outcomes(pool: asyncpg.Pool, tenant: UUID) -> Counter[tuple[str, str]]:
    """(sale, event type) of every reservation outcome the tenant's batches wrote."""
    rows = await pool.fetch(
        "SELECT payload FROM stock.outbox WHERE event_type = ANY($1::text[])"
        " AND convert_from(payload, 'UTF8') LIKE $2",
        [c.STOCK_RESERVED, c.STOCK_RESERVATION_FAILED],
        f"%{tenant}%",
    )
    found: Counter[tuple[str, str]] = Counter()
    for row in rows:
        event: Any = decode_event(bytes(row["payload"]))
        found[(str(event.data.sale), event.type)] += 1
    return found


async def test_two_consumers_on_one_hot_record_take_turns_and_never_oversell(pool, tenant, stocked):
    record = await stocked("HOT", UNITS)
    sales = [sale(tenant, n) for n in range(2 * BATCHES * BATCH)]
    halves = [sales[0::2], sales[1::2]]  # as two consumers' partitions would split them

    async def consumer(mine: list[SaleToReserve]) -> None:
        for i in range(0, len(mine), BATCH):
            changes = [SaleChange("created", s) for s in mine[i : i + BATCH]]
            await in_transaction(
                pool,
                lambda conn, changes=changes: reservations.reserve_sales(conn, changes),
            )

    await asyncio.wait_for(asyncio.gather(*(consumer(h) for h in halves)), timeout=120)

    reserved = await pool.fetchrow(
        "SELECT quantity, reserved FROM stock.stock_records WHERE id = $1", record.id
    )
    assert (reserved["quantity"], reserved["reserved"]) == (UNITS, UNITS)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM stock.reservations r JOIN stock.reservation_lines l"
            " ON l.reservation_id = r.id WHERE r.tenant_id = $1 AND r.status = 'active'",
            tenant,
        )
        == UNITS
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM stock.backorders WHERE tenant_id = $1", tenant)
        == len(sales) - UNITS
    )
    found = await outcomes(pool, tenant)
    assert set(found.values()) == {1}, "one outcome a sale, once"
    assert {s for s, _ in found} == {str(s.sale) for s in sales}
    by_type = Counter(t for _, t in found)
    assert by_type == {c.STOCK_RESERVED: UNITS, c.STOCK_RESERVATION_FAILED: len(sales) - UNITS}
    ledger = await pool.fetchval(
        "SELECT sum(reserved_change) FROM stock.movements WHERE stock_record_id = $1", record.id
    )
    assert ledger == UNITS
    assert (await integrity.check_integrity(pool, tenant)).ok
