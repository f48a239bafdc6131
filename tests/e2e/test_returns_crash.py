"""Killing the stock service in the middle of a burst of received returns applies each
return exactly once: on-hand, the ledger and the returns agree."""

import asyncio
import uuid

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent, utcnow
from tests.e2e.stocking import stocked_product
from tests.e2e.test_stock_crash import restart
from tests.kafka_tools import produce
from tests.support import Client, eventually, ref

RETURNS = 2000
STOCK = 5


def received(tenant_id: str, sku: str, location: str) -> CloudEvent:
    """A return of one unit, received for restock at `location`, as orders publishes it."""
    now = utcnow()
    data = c.ReturnStatusChanged(
        id=uuid.uuid4(),
        sale=uuid.uuid4(),
        sale_id=ref("S"),
        status="received",
        previous_status="requested",
        version=2,
        reason="no_longer_needed",
        lines=[c.ReturnLine(sku=sku, quantity=1)],
        received_lines=[
            c.ReturnReceivedLine(sku=sku, quantity=1, disposition="restock", location_id=location)
        ],
        created_at=now,
        updated_at=now,
        received_at=now,
    )
    return c.make_event(
        source="/orders",
        type=c.RETURN_STATUS_CHANGED,
        tenant_id=uuid.UUID(tenant_id),
        subject=f"return/{data.id}",
        data=data,
    )


async def test_stock_killed_mid_burst_of_received_returns_applies_each_once(
    tenant: Client, infrastructure, platform
):
    sku, location, record = await stocked_product(tenant, quantity=STOCK)
    events = [received(tenant.tenant_id, sku, location) for _ in range(RETURNS)]
    messages = [
        (c.sale_key(e.tenantid, uuid.UUID(e.data["sale"])).encode(), e.to_bytes()) for e in events
    ]
    db = await asyncpg.connect(infrastructure.database_url)
    record_id = uuid.UUID(record["id"])

    async def applied() -> int:
        return await db.fetchval(
            "SELECT count(*) FROM stock.movements WHERE stock_record_id = $1 AND reason = 'return'",
            record_id,
        )

    try:
        publishing = asyncio.create_task(
            produce(infrastructure.bootstrap_servers, c.SALES_TOPIC, messages)
        )
        at_kill = await eventually(applied, lambda n: n > 0, interval=0.005, what="first returns")
        platform["stock"].kill()
        await publishing
        assert at_kill < RETURNS, "the kill must land mid-burst to prove anything"
        await restart(platform["stock"])

        await eventually(
            applied, lambda n: n == RETURNS, timeout=90, what="every return applied after restart"
        )
        found = await db.fetchrow(
            "SELECT quantity, (SELECT count(DISTINCT reference) FROM stock.movements"
            " WHERE stock_record_id = $1 AND reason = 'return') AS returns"
            " FROM stock.stock_records WHERE id = $1",
            record_id,
        )
        assert (found["quantity"], found["returns"]) == (STOCK + RETURNS, RETURNS)
        references = {f"return:{e.data['id']}" for e in events}
        rows = await db.fetch(
            "SELECT reference FROM stock.movements WHERE stock_record_id = $1"
            " AND reason = 'return'",
            record_id,
        )
        assert sorted(r["reference"] for r in rows) == sorted(references), "each once, no other"
        assert (await tenant.get("/stock/integrity")).body["ok"] is True
    finally:
        if not platform["stock"].is_running():
            await restart(platform["stock"])
        await db.close()
