"""Received returns in stock, on a real PostgreSQL: restocked units go on hand (a missing
record is made), discards are recorded without a quantity change, and a line at a
location stock lacks is left out and noted; the backorder queue is woken."""

import uuid

import pytest

from fulfilkit import contracts as c
from fulfilkit.events import utcnow
from fulfilkit.received import decode_event
from stock.handlers import changes_stock, received_return
from stock.usecases import catalogue
from stock.usecases.returns import ReceivedReturn, ReturnLine, apply_returns

pytestmark = pytest.mark.integration


def status_changed(status: str, *lines: c.ReturnReceivedLine):
    now = utcnow()
    data = c.ReturnStatusChanged(
        id=uuid.uuid4(),
        sale=uuid.uuid4(),
        sale_id="S-1",
        status=status,  # type: ignore[arg-type]
        previous_status="requested",
        version=2,
        reason="damaged",
        lines=[c.ReturnLine(sku=line.sku, quantity=line.quantity) for line in lines],
        received_lines=list(lines),
        created_at=now,
        updated_at=now,
    )
    event = c.make_event(
        source="/orders",
        type=c.RETURN_STATUS_CHANGED,
        tenant_id=uuid.uuid4(),
        subject="return/1",
        data=data,
    )
    return decode_event(event.to_bytes())


def test_only_a_received_return_changes_stock():
    line = c.ReturnReceivedLine(sku="A", quantity=2, disposition="restock", location_id="wh-1")
    assert changes_stock(status_changed("received", line))
    assert not changes_stock(status_changed("closed", line))
    assert not changes_stock(status_changed("canceled"))
    event = status_changed("received", line)
    assert received_return(event) == ReceivedReturn(
        event.tenantid, event.data.id, (ReturnLine("A", 2, "restock", "wh-1"),)
    )


async def test_restock_discard_and_a_line_stock_cannot_place(pool, tenant, stocked):
    kept = await stocked("A", quantity=1, location="wh-1")
    await catalogue.create_location(pool, tenant, "wh-2", "second")  # no record of A there
    ret = ReceivedReturn(
        tenant,
        uuid.uuid4(),
        (
            ReturnLine("A", 2, "restock", "wh-1"),
            ReturnLine("A", 1, "restock", "wh-2"),
            ReturnLine("A", 1, "discard", "wh-1"),
            ReturnLine("A", 4, "restock", "nowhere"),
        ),
    )
    async with pool.acquire() as conn, conn.transaction():
        await apply_returns(conn, [ret])
    rows = await pool.fetch(
        "SELECT location_id, reason, quantity_change, quantity_after, notes FROM stock.movements"
        " WHERE tenant_id = $1 AND reference = $2 ORDER BY id",
        tenant,
        f"return:{ret.return_id}",
    )
    noted = "not_restocked: A x 4 at nowhere"
    assert [tuple(r) for r in rows] == [
        ("wh-1", "return", 2, 3, noted),
        ("wh-2", "return", 1, 1, noted),
        ("wh-1", "discard", 0, 3, noted),
    ]
    on_hand = dict(
        await pool.fetch(
            "SELECT location_id, quantity FROM stock.stock_records WHERE tenant_id = $1",
            tenant,
        )
    )
    assert on_hand == {"wh-1": 3, "wh-2": 1}, f"{kept.id} gained 2, a record was made at wh-2"
    woken = await pool.fetch(
        "SELECT location_id FROM stock.backorder_wakeups WHERE tenant_id = $1", tenant
    )
    assert {r["location_id"] for r in woken} == {"wh-1", "wh-2"}, "where units came back"
