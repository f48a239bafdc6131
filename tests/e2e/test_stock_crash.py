"""Killing the stock service in the middle of a burst loses and doubles nothing."""

import asyncio
import uuid

import asyncpg

from deploy.local.services import ServiceProcess
from fulfilkit import contracts as c
from tests.e2e.sale_events import event, publish, snapshot
from tests.e2e.stocking import stocked_product
from tests.support import Client, eventually

SALES = 3000


async def test_stock_killed_mid_batch_reserves_every_sale_exactly_once(
    tenant: Client,
    infrastructure,
    platform,
):
    sku, location, record = await stocked_product(tenant, quantity=SALES)
    events = [
        event(c.SALE_CREATED, tenant.tenant_id, snapshot(location, (sku, 1))) for _ in range(SALES)
    ]
    tenant_id = uuid.UUID(tenant.tenant_id)
    db = await asyncpg.connect(infrastructure.database_url)

    async def reservations() -> int:
        return await db.fetchval(
            "SELECT count(*) FROM stock.reservations WHERE tenant_id = $1", tenant_id
        )

    try:
        # Publish while watching, so the kill lands while the burst is still arriving.
        publishing = asyncio.create_task(publish(infrastructure.bootstrap_servers, events))
        at_kill = await eventually(
            reservations, lambda n: n > 0, interval=0.005, what="first reservations"
        )
        platform["stock"].kill()
        await publishing
        assert at_kill < SALES, "the kill must land mid-burst to prove anything"
        await restart(platform["stock"])

        await eventually(
            reservations,
            lambda n: n == SALES,
            timeout=60,
            what="every sale reserved after the restart",
        )
        reserved = (await tenant.get(f"/stock/stock-records/{record['id']}")).body["reserved"]
        ledger_rows = await db.fetchval(
            "SELECT count(*) FROM stock.movements WHERE stock_record_id = $1"
            " AND reason = 'reservation'",
            uuid.UUID(record["id"]),
        )
        assert reserved == ledger_rows == SALES
        assert (await tenant.get("/stock/integrity")).body["ok"] is True
    finally:
        if not platform["stock"].is_running():  # never leave the next tests without stock
            await restart(platform["stock"])
        await db.close()


async def restart(service: ServiceProcess) -> None:
    await asyncio.to_thread(service.start)
    await asyncio.to_thread(service.wait_ready, 60)
