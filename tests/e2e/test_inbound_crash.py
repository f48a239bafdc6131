"""Killing the stock service in the middle of a burst of receipts applies each receipt once:
on-hand, the ledger and the inbound order's `received` agree."""

import asyncio
import uuid

import aiohttp
import asyncpg

from tests.e2e.test_stock_crash import restart
from tests.support import Client, eventually, ref

RECEIPTS = 400
CLIENTS = 16


async def test_stock_killed_mid_burst_of_receipts_applies_each_once(
    tenant: Client, infrastructure, platform
):
    location, sku = ref("wh"), ref("SKU")
    assert (
        await tenant.post("/locations", {"location_id": location, "name": "Dock"})
    ).status == 201
    assert (await tenant.post("/products", {"sku": sku, "name": "Mug"})).status == 201
    order = await tenant.post(
        "/inbound-orders",
        {
            "reference": ref("PO"),
            "location_id": location,
            "lines": [{"sku": sku, "quantity": RECEIPTS}],
        },
    )
    assert order.status == 201, order
    path = f"/inbound-orders/{order.body['id']}/receipts"
    body = {"lines": [{"sku": sku, "quantity": 1, "reason": "one at a time"}]}
    keys = [ref("receipt") for _ in range(RECEIPTS)]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for key in keys:
        queue.put_nowait(key)
    answered: dict[str, str] = {}

    async def receive_until_answered() -> None:
        """Each receipt is sent again with its key until it is answered 201 (a retry after
        a lost answer replays it)."""
        while not queue.empty():
            key = queue.get_nowait()
            while True:
                try:
                    answer = await tenant.post(path, body, headers={"Idempotency-Key": key})
                except (TimeoutError, aiohttp.ClientError):
                    answer = None
                if answer is not None and answer.status == 201:
                    answered[key] = answer.body["receipt_id"]
                    break
                assert answer is None or answer.status >= 500, answer
                await asyncio.sleep(0.05)  # the service is down: try again shortly

    db = await asyncpg.connect(infrastructure.database_url)
    tenant_id = uuid.UUID(tenant.tenant_id)

    async def receipts() -> int:
        return await db.fetchval(
            "SELECT count(*) FROM stock.inbound_receipts WHERE tenant_id = $1", tenant_id
        )

    try:
        sending = [asyncio.create_task(receive_until_answered()) for _ in range(CLIENTS)]
        at_kill = await eventually(receipts, lambda n: n > 0, interval=0.005, what="receipts")
        platform["stock"].kill()
        assert at_kill < RECEIPTS, "the kill must land mid-burst to prove anything"
        await restart(platform["stock"])
        await asyncio.gather(*sending)

        assert len(answered) == RECEIPTS and len(set(answered.values())) == RECEIPTS
        assert await receipts() == RECEIPTS
        record = (await tenant.get("/stock/stock-records", sku=sku, location_id=location)).body
        [shown] = record["data"]
        ledger = await db.fetch(
            "SELECT reference, quantity_change FROM stock.movements WHERE tenant_id = $1"
            " AND sku = $2 AND reason = 'receipt'",
            tenant_id,
            sku,
        )
        assert (shown["quantity"], shown["incoming"]) == (RECEIPTS, 0)
        assert sorted(r["reference"] for r in ledger) == sorted(answered.values())
        assert {r["quantity_change"] for r in ledger} == {1}
        got = await tenant.get(f"/inbound-orders/{order.body['id']}")
        assert got.body["status"] == "received"
        assert got.body["lines"] == [{"sku": sku, "quantity": RECEIPTS, "received": RECEIPTS}]
        assert (await tenant.get("/stock/integrity")).body["ok"] is True
    finally:
        if not platform["stock"].is_running():
            await restart(platform["stock"])
        await db.close()
