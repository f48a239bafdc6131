"""Killing the stock service in the middle of a burst loses and doubles nothing."""

import asyncio
import uuid

import asyncpg

from deploy.local.services import ServiceProcess
from fulfilkit import contracts as c
from tests.e2e.sale_events import event, publish, snapshot
from tests.e2e.stocking import stocked_product
from tests.support import Client, eventually, ref

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


async def test_stock_killed_mid_burst_of_split_sales_reserves_every_part_exactly_once(
    tenant: Client,
    infrastructure,
    platform,
):
    """Each routed sale needs one unit of a SKU stocked only at one location and one of a
    SKU stocked only at another, so each is split in two; a kill in the middle of the burst
    leaves every sale reserved once, at both locations, and no part of one reserved twice."""
    split = SALES // 2
    tenant_id = uuid.UUID(tenant.tenant_id)
    places, skus = [ref("wh"), ref("wh")], [ref("SKU"), ref("SKU")]
    record_ids = []
    for place, sku in zip(places, skus, strict=True):
        made = await tenant.post("/locations", {"location_id": place, "name": place})
        assert made.status == 201, made
        assert (await tenant.post("/products", {"sku": sku, "name": "Half"})).status == 201
        body = {"sku": sku, "location_id": place, "quantity": split}
        made = await tenant.post("/stock/stock-records", body)
        assert made.status == 201, made
        record_ids.append(uuid.UUID(made.body["id"]))
    events = []
    for _ in range(split):
        sale = snapshot("", (skus[0], 1), (skus[1], 1)).model_copy(update={"location_id": None})
        events.append(event(c.SALE_CREATED, tenant.tenant_id, sale))
    db = await asyncpg.connect(infrastructure.database_url)

    async def reservations() -> int:
        return await db.fetchval(
            "SELECT count(*) FROM stock.reservations WHERE tenant_id = $1", tenant_id
        )

    try:
        publishing = asyncio.create_task(publish(infrastructure.bootstrap_servers, events))
        at_kill = await eventually(
            reservations, lambda n: n > 0, interval=0.005, what="first reservations"
        )
        platform["stock"].kill()
        await publishing
        assert at_kill < split, "the kill must land mid-burst to prove anything"
        await restart(platform["stock"])

        await eventually(
            reservations,
            lambda n: n == split,
            timeout=60,
            what="every split sale reserved after the restart",
        )
        for record_id in record_ids:  # every unit of both records, each reserved once
            found = await db.fetchrow(
                "SELECT quantity, reserved, (SELECT count(*) FROM stock.movements m"
                " WHERE m.stock_record_id = r.id AND m.reason = 'reservation') AS ledger,"
                " (SELECT count(*) FROM stock.reservation_lines l"
                " WHERE l.stock_record_id = r.id) AS lines"
                " FROM stock.stock_records r WHERE r.id = $1",
                record_id,
            )
            assert dict(found) == {
                "quantity": split,
                "reserved": split,
                "ledger": split,
                "lines": split,
            }
        per_sale = await db.fetch(
            "SELECT count(*) AS lines, count(DISTINCT r.location_id) AS primaries"
            " FROM stock.reservations r JOIN stock.reservation_lines l ON l.reservation_id = r.id"
            " WHERE r.tenant_id = $1 GROUP BY r.id",
            tenant_id,
        )
        assert {(row["lines"], row["primaries"]) for row in per_sale} == {(2, 1)}
        assert (await tenant.get("/stock/integrity")).body["ok"] is True
    finally:
        if not platform["stock"].is_running():
            await restart(platform["stock"])
        await db.close()


async def restart(service: ServiceProcess) -> None:
    await asyncio.to_thread(service.start)
    await asyncio.to_thread(service.wait_ready, 60)
