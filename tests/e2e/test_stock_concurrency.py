"""Never oversell: 2,000 one-unit sales race for 500 units while stock keeps changing."""

import asyncio

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, eventually, ref

SALES, UNITS, SALE_CLIENTS, DELTA_CLIENTS, DELTA_ROUNDS = 2000, 500, 48, 6, 25


async def test_concurrent_sales_and_deltas_never_oversell(tenant: Client):
    sku, location, record = await stocked_product(tenant, quantity=UNITS)
    sale_ids = [ref("S") for _ in range(SALES)]
    queue = iter(sale_ids)
    applied: list[int] = []
    samples: list[tuple[int, int]] = []
    racing = True

    async def sell() -> None:
        for sale_id in queue:
            answer = await tenant.post(
                "/sales",
                sale_body(sale_id, location, (sku, 1)),
                headers={"Prefer": "respond-async"},
            )
            assert answer.status == 202, answer

    async def adjust() -> None:
        for _ in range(DELTA_ROUNDS):
            for delta in (3, -2):
                answer = await tenant.post(
                    "/stock/stock-records/change",
                    {"stock_records": [{"id": record["id"], "quantity_change": delta}]},
                )
                assert answer.status in (200, 409), answer
                if answer.status == 200:
                    applied.append(delta)

    async def sample() -> None:
        while racing:
            now = (await tenant.get(f"/stock/stock-records/{record['id']}")).body
            samples.append((now["reserved"], now["quantity"]))

    sampler = asyncio.create_task(sample())
    await asyncio.gather(
        *(sell() for _ in range(SALE_CLIENTS)), *(adjust() for _ in range(DELTA_CLIENTS))
    )

    async def settled() -> tuple[dict, int, int]:
        now = (await tenant.get(f"/stock/stock-records/{record['id']}")).body
        counts = {}
        for status in ("awaiting_stock", "pending", "backordered"):
            page = await tenant.get("/sales", status=status, limit=1)
            counts[status] = page.body["pagination"]["total_count"]
        return now, counts["pending"], counts["awaiting_stock"]

    final, pending, _ = await eventually(
        settled,
        lambda s: s[2] == 0 and s[0]["available"] == 0 and s[1] == s[0]["reserved"],
        timeout=90,
        interval=0.25,
        what="every sale reserved or backordered",
    )
    racing = False
    await sampler

    expected_quantity = UNITS + sum(applied)
    assert final["quantity"] == expected_quantity
    assert pending == final["reserved"] == expected_quantity, "exactly as many sales as units"
    backordered = (await tenant.get("/sales", status="backordered", limit=1)).body
    assert backordered["pagination"]["total_count"] == SALES - pending
    assert samples and all(0 <= reserved <= quantity for reserved, quantity in samples)
    rows: list[dict] = []
    while True:  # every page of the ledger: the race may write more than one page holds
        page = (await tenant.get("/stock/movements", sku=sku, limit=1000, offset=len(rows))).body
        rows += page["data"]
        if not page["data"] or len(rows) >= page["pagination"]["total_count"]:
            break
    assert len(rows) == page["pagination"]["total_count"]
    assert sum(r["quantity_change"] for r in rows) == final["quantity"]
    assert sum(r["reserved_change"] for r in rows) == final["reserved"]
    assert (await tenant.get("/stock/integrity")).body["ok"] is True
