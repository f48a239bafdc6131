"""Returns on a real PostgreSQL: the limit per SKU holds under concurrent requests, and
each change writes its event, keyed by the sale, in its transaction."""

import asyncio
import uuid

import orjson
import pytest

from fulfilkit import contracts as c
from fulfilkit.errors import Conflict, Invalid, NotFound
from orders import usecases
from orders.domain import NewSale
from tests.support import ref

pytestmark = pytest.mark.integration


async def shipped(pool, tenant, quantity: int = 2) -> tuple[uuid.UUID, str]:
    """A sale of `quantity` units of "A", shipped (set directly: fulfilment is not here)."""
    sale_id = ref("S")
    new = NewSale(
        sale_id=sale_id,
        shop={"channel": "web", "shop_name": "Shop"},
        location_id="wh-1",
        lines=[{"sku": "A", "quantity": quantity}],
    )
    created = await usecases.create_sales(pool, None, tenant, "tester", [new], None)  # type: ignore[arg-type]
    [(sale, _)] = created.sales
    await pool.execute("UPDATE orders.sales SET status = 'shipped' WHERE id = $1", sale.id)
    return sale.id, sale_id


async def in_transaction(pool, work):
    async with pool.acquire() as conn, conn.transaction():
        return await work(conn)


async def returned(pool, tenant, sale_id: str, quantity: int):
    return await in_transaction(
        pool,
        lambda conn: usecases.create_return(
            conn, tenant, sale_id, "damaged", [{"sku": "A", "quantity": quantity}]
        ),
    )


async def test_concurrent_returns_of_one_sale_never_claim_the_same_units(pool, tenant):
    _, sale_id = await shipped(pool, tenant, quantity=2)
    outcomes = await asyncio.gather(
        *(returned(pool, tenant, sale_id, 1) for _ in range(5)), return_exceptions=True
    )
    made = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(made) == 2 and len(refused) == 3
    assert all(isinstance(r, Conflict) for r in refused)
    assert all(r.errors[0]["message"] == "1 of 'A' asked, 0 may still be returned" for r in refused)  # type: ignore[union-attr, index]


async def test_each_change_writes_its_event_keyed_by_the_sale(pool, tenant):
    sale, sale_id = await shipped(pool, tenant)
    ret = await returned(pool, tenant, sale_id, 2)
    line = {"sku": "A", "quantity": 2, "disposition": "restock", "location_id": "wh-1"}
    await in_transaction(pool, lambda conn: usecases.receive_return(conn, tenant, ret.id, [line]))
    await in_transaction(pool, lambda conn: usecases.close_return(conn, tenant, ret.id))
    await in_transaction(pool, lambda conn: usecases.close_return(conn, tenant, ret.id))
    rows = await pool.fetch(
        "SELECT key, payload FROM orders.outbox WHERE key LIKE $1 ORDER BY seq", f"{tenant}:%"
    )
    events = [(r["key"], orjson.loads(r["payload"])) for r in rows]
    events = [(k, e) for k, e in events if e["subject"] == f"return/{ret.id}"]
    key = c.sale_key(tenant, sale)
    assert [(k, e["type"], e["data"]["status"], e["data"]["version"]) for k, e in events] == [
        (key, c.RETURN_CREATED, "requested", 1),
        (key, c.RETURN_STATUS_CHANGED, "received", 2),
        (key, c.RETURN_STATUS_CHANGED, "closed", 3),
    ], "closing twice publishes once"
    assert events[1][1]["data"]["received_lines"] == [line]
    assert events[1][1]["data"]["sale"] == str(sale)
    found = await usecases.get_return(pool, tenant, ret.id)
    assert (found.status, found.version, found.received_lines) == ("closed", 3, [line])
    by_sale = await usecases.returns_of_sales(pool, [sale])
    assert [r.id for r in by_sale[sale]] == [ret.id]


async def test_unknown_sales_and_returns_and_bad_receipts_are_refused(pool, tenant):
    with pytest.raises(NotFound):
        await returned(pool, tenant, ref("S"), 1)
    _, sale_id = await shipped(pool, tenant)
    ret = await returned(pool, tenant, sale_id, 1)
    line = {"sku": "A", "quantity": 2, "disposition": "discard", "location_id": "wh-1"}
    with pytest.raises(Invalid) as invalid:
        await in_transaction(
            pool, lambda conn: usecases.receive_return(conn, tenant, ret.id, [line])
        )
    assert invalid.value.errors == [
        {
            "field": "/lines/0/quantity",
            "message": "2 of 'A' received in all; the return asked for 1",
        }
    ]
    with pytest.raises(NotFound):
        await usecases.get_return(pool, uuid.uuid4(), ret.id)  # another tenant's
