"""Reservations follow the sale: reserve all lines or none, release, commit, backorder."""

import uuid

from fulfilkit import contracts as c
from tests.e2e.sale_events import as_status, consumed, event, publish, snapshot
from tests.e2e.stocking import sale_body, stocked_product
from tests.kafka_tools import as_event, read_all
from tests.support import Client, eventually, ref


async def record_of(client: Client, sku: str) -> dict:
    return (await client.get("/stock/stock-records", sku=sku)).body["data"][0]


async def movements(client: Client, sku: str, reason: str) -> list[dict]:
    return (await client.get("/stock/movements", sku=sku, reason=reason)).body["data"]


async def test_cancel_releases_once_however_often_it_is_replayed(tenant: Client, infrastructure):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale = snapshot(location, (sku, 2))
    created = event(c.SALE_CREATED, tenant.tenant_id, sale)
    canceled = [
        event(c.SALE_CANCELED, tenant.tenant_id, as_status(sale, "canceled")) for _ in range(3)
    ]
    await publish(infrastructure.bootstrap_servers, [created, *canceled, canceled[0]])

    await consumed(infrastructure.bootstrap_servers)
    record = await record_of(tenant, sku)
    assert (record["quantity"], record["reserved"], record["available"]) == (5, 0, 5)
    assert len(await movements(tenant, sku, "reservation")) == 1
    [released] = await movements(tenant, sku, "release")
    assert (released["reserved_change"], released["reference"]) == (-2, sale.sale_id)


async def test_shipment_commits_once(tenant: Client, infrastructure):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 2)))
    assert created.body["status"] == "pending"
    sale = snapshot(location, (sku, 2), sale=uuid.UUID(created.body["id"]), sale_id=sale_id)
    shipped = [
        event(c.SALE_STATUS_CHANGED, tenant.tenant_id, as_status(sale, "shipped")) for _ in range(3)
    ]
    await publish(infrastructure.bootstrap_servers, shipped)

    await consumed(infrastructure.bootstrap_servers)
    record = await record_of(tenant, sku)
    assert (record["quantity"], record["reserved"]) == (3, 0)
    [committed] = await movements(tenant, sku, "commit")
    assert (committed["quantity_change"], committed["reserved_change"]) == (-2, -2)


async def test_a_replayed_sale_created_reserves_nothing_more(tenant: Client, infrastructure):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale = snapshot(location, (sku, 1))
    copies = [event(c.SALE_CREATED, tenant.tenant_id, sale) for _ in range(3)]
    await publish(infrastructure.bootstrap_servers, copies)
    await consumed(infrastructure.bootstrap_servers)
    assert (await record_of(tenant, sku))["reserved"] == 1


async def test_all_lines_or_none(tenant: Client):
    plenty, location, _ = await stocked_product(tenant, quantity=10)
    scarce = ref("SKU")
    assert (await tenant.post("/products", {"sku": scarce, "name": "Rare"})).status == 201
    record = {"sku": scarce, "location_id": location, "quantity": 1}
    assert (await tenant.post("/stock/stock-records", record)).status == 201
    sale = await tenant.post("/sales", sale_body(ref("S"), location, (plenty, 3), (scarce, 2)))
    assert sale.body["status"] == "backordered"
    assert (await record_of(tenant, plenty))["reserved"] == 0
    assert (await record_of(tenant, scarce))["reserved"] == 0


async def reservation_failure(bootstrap: str, sale_uuid: str) -> dict | None:
    for record in await read_all(bootstrap, c.STOCK_TOPIC):
        value = as_event(record)
        if value is None:
            continue
        if value["type"] == c.STOCK_RESERVATION_FAILED and value["data"]["sale"] == sale_uuid:
            return value["data"]
    return None


async def test_unknown_sku_or_location_fails_with_a_reason(tenant: Client, infrastructure):
    known, location, _ = await stocked_product(tenant, quantity=5)
    # orders refuses a SKU outside the catalogue (422, tests/e2e/test_sales_created_with_issues.py);
    # a sale.created that names one anyway is still refused by stock with its reason
    unknown_sku = snapshot(location, ("NO-SUCH-SKU", 1))
    await publish(
        infrastructure.bootstrap_servers, [event(c.SALE_CREATED, tenant.tenant_id, unknown_sku)]
    )
    unknown_location = await tenant.post("/sales", sale_body(ref("S"), "no-such-wh", (known, 1)))
    assert (unknown_location.status, unknown_location.body["status"]) == (228, "backordered")
    for sale, reason in (
        (str(unknown_sku.id), "unknown_sku"),
        (unknown_location.body["id"], "unknown_location"),
    ):
        failure = await eventually(
            lambda s=sale: reservation_failure(infrastructure.bootstrap_servers, s),
            lambda f: f is not None,
            what="stock.reservation_failed",
        )
        assert failure["shortfalls"][0]["reason"] == reason
    healthy = await tenant.post("/sales", sale_body(ref("S"), location, (known, 1)))
    assert healthy.body["status"] == "pending"


async def test_backorders_fill_oldest_first_when_stock_arrives(tenant: Client, infrastructure):
    sku, location, _ = await stocked_product(tenant, quantity=1)
    ids = [ref("S") for _ in range(3)]
    statuses = [
        (await tenant.post("/sales", sale_body(i, location, (sku, 1)))).body["status"] for i in ids
    ]
    assert statuses == ["pending", "backordered", "backordered"]

    async def status(sale_id: str) -> str:
        return (await tenant.get(f"/sales/{sale_id}")).body["status"]

    restock = {"sku": sku, "location_id": location, "quantity": 1, "update_type": "restock"}
    assert (await tenant.post("/stock/stock-level-updates", restock)).status == 200
    await eventually(lambda: status(ids[1]), lambda s: s == "pending", what="oldest filled")
    assert await status(ids[2]) == "backordered"
    assert (await tenant.post("/stock/stock-level-updates", restock)).status == 200
    await eventually(lambda: status(ids[2]), lambda s: s == "pending", what="next filled")
    record = await record_of(tenant, sku)
    assert (record["quantity"], record["reserved"]) == (3, 3)


async def test_a_canceled_backorder_leaves_the_queue(tenant: Client, infrastructure):
    sku, location, _ = await stocked_product(tenant, quantity=0)
    sale = snapshot(location, (sku, 1))
    created = event(c.SALE_CREATED, tenant.tenant_id, sale)
    canceled = event(c.SALE_CANCELED, tenant.tenant_id, as_status(sale, "canceled"))
    await publish(infrastructure.bootstrap_servers, [created, canceled])
    await consumed(infrastructure.bootstrap_servers)
    later = ref("S")
    restock = {"sku": sku, "location_id": location, "quantity": 1, "update_type": "restock"}
    assert (await tenant.post("/stock/stock-level-updates", restock)).status == 200
    assert (await tenant.post("/sales", sale_body(later, location, (sku, 1)))).body[
        "status"
    ] == "pending", "the canceled backorder must not have taken the unit"
