"""A sale from creation to delivery or cancellation, as a client sees it."""

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, eventually, ref


async def pending_sale(
    client: Client, quantity: int = 2, stock: int = 10, channel: str = "web"
) -> tuple[str, str, dict]:
    sku, location, record = await stocked_product(client, quantity=stock)
    sale_id = ref("S")
    body = sale_body(sale_id, location, (sku, quantity))
    body["shop"]["channel"] = channel
    created = await client.post("/sales", body)
    assert created.body["status"] == "pending", created
    return sale_id, sku, record


async def shipped_fulfillment(client: Client, sale_id: str) -> dict:
    init = await client.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    [fulfillment] = init.body["fulfillments"]
    return fulfillment


async def status_of(client: Client, sale_id: str) -> str:
    return (await client.get(f"/sales/{sale_id}")).body["status"]


async def stock_of(client: Client, record: dict) -> dict:
    return (await client.get(f"/stock/stock-records/{record['id']}")).body


async def test_cancel_releases_stock_and_answers_the_same_twice(tenant: Client):
    sale_id, _, record = await pending_sale(tenant)
    cancel = {"sale_id": sale_id, "cancel_reason": "customer_request"}
    first = await tenant.post("/sales/cancel", cancel)
    second = await tenant.post("/sales/cancel", cancel)
    assert first.status == second.status == 200
    assert first.body == second.body
    assert first.body["status"] == "canceled" and first.body["sale_id"] == sale_id

    sale = (await tenant.get(f"/sales/{sale_id}")).body
    assert (sale["status"], sale["cancel_reason"]) == ("canceled", "customer_request")
    assert sale["status_history"][-1]["reason"] == "customer_request"
    assert [h["to_status"] for h in sale["status_history"]].count("canceled") == 1
    await eventually(
        lambda: stock_of(tenant, record), lambda r: r["reserved"] == 0, what="reservation released"
    )
    await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: a.body["reservation"]["status"] == "released",
        what="the sale showing its released reservation",
    )


async def test_cancel_with_if_match_cancels_only_the_version_the_caller_saw(tenant: Client):
    """A support tool reads a pending sale and cancels it only if it is still as read: if
    shipping claimed it meanwhile, the cancel is refused instead."""
    sale_id, _, _ = await pending_sale(tenant)
    seen = await tenant.get(f"/sales/{sale_id}")
    assert seen.headers["ETag"] == f'"{seen.body["version"]}"', seen.headers
    await shipped_fulfillment(tenant, sale_id)  # claims it: a new version
    cancel = {"sale_id": sale_id, "cancel_reason": "customer_request"}

    stale = await tenant.post("/sales/cancel", cancel, headers={"If-Match": seen.headers["ETag"]})

    assert (stale.status, stale.problem_code) == (409, "conflict"), stale
    assert stale.body["sale_status"] == "in_fulfillment"
    assert stale.body["version"] == seen.body["version"] + 1
    assert await status_of(tenant, sale_id) == "in_fulfillment"

    current = (await tenant.get(f"/sales/{sale_id}")).headers["ETag"]
    done = await tenant.post("/sales/cancel", cancel, headers={"If-Match": current})
    assert (done.status, done.body["status"]) == (200, "canceled"), done
    again = await tenant.post("/sales/cancel", cancel, headers={"If-Match": current})
    assert (again.status, again.body) == (200, done.body), "canceled already: the same answer"
    assert (await tenant.get(f"/sales/{sale_id}")).headers["ETag"] != current

    garbled = await tenant.post("/sales/cancel", cancel, headers={"If-Match": "latest"})
    assert (garbled.status, garbled.problem_code) == (400, "invalid_request"), garbled


async def test_cancel_refuses_bad_reasons_unknown_sales_and_shipped_sales(tenant: Client):
    bad = await tenant.post("/sales/cancel", {"sale_id": ref("S"), "cancel_reason": "bored"})
    assert bad.status == 422
    assert {e["field"] for e in bad.body["errors"]} == {"/cancel_reason"}
    unknown = await tenant.post("/sales/cancel", {"sale_id": ref("S"), "cancel_reason": "other"})
    assert (unknown.status, unknown.problem_code) == (404, "no_content")

    sale_id, _, _ = await pending_sale(tenant)
    fulfillment = await shipped_fulfillment(tenant, sale_id)
    shipped = await tenant.post(
        f"/fulfillment/fulfillments/{fulfillment['id']}/status", {"status": "shipped"}
    )
    assert shipped.status == 200, shipped
    late = await tenant.post("/sales/cancel", {"sale_id": sale_id, "cancel_reason": "other"})
    assert (late.status, late.problem_code) == (409, "conflict")
    assert await status_of(tenant, sale_id) == "shipped"


async def test_fulfillment_moves_forward_to_delivery_and_commits_stock(tenant: Client):
    sale_id, _, record = await pending_sale(tenant, quantity=2, stock=10)
    fulfillment = await shipped_fulfillment(tenant, sale_id)
    path = f"/fulfillment/fulfillments/{fulfillment['id']}/status"

    too_early = await tenant.post(path, {"status": "delivered"})
    assert (too_early.status, too_early.problem_code) == (409, "conflict")
    for status in ("picking", "packed"):
        moved = await tenant.post(path, {"status": status})
        assert (moved.status, moved.body["status"]) == (200, status)
    backwards = await tenant.post(path, {"status": "picking"})
    assert (backwards.status, backwards.problem_code) == (409, "conflict")

    shipped = await tenant.post(path, {"status": "shipped"})
    assert shipped.body["status"] == "shipped"
    assert await status_of(tenant, sale_id) == "shipped"
    await eventually(
        lambda: stock_of(tenant, record),
        lambda r: (r["quantity"], r["reserved"]) == (8, 0),
        what="stock committed",
    )
    await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: a.body["reservation"]["status"] == "committed",
        what="the sale showing its committed reservation",
    )

    delivered = await tenant.post(path, {"status": "delivered"})
    assert delivered.body["status"] == "delivered"
    await eventually(
        lambda: status_of(tenant, sale_id), lambda s: s == "delivered", what="sale delivered"
    )
    sale = (await tenant.get(f"/sales/{sale_id}")).body
    assert [h["to_status"] for h in sale["status_history"]] == [
        "awaiting_stock",
        "pending",
        "in_fulfillment",
        "shipped",
        "delivered",
    ]
    await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: a.body["fulfillments"][0]["status"] == "delivered",
        what="sale shows its delivered fulfillment",
    )


async def test_a_canceled_sale_never_ships_and_its_fulfillment_is_canceled(tenant: Client):
    sale_id, _, record = await pending_sale(tenant)
    fulfillment = await shipped_fulfillment(tenant, sale_id)
    cancel = await tenant.post("/sales/cancel", {"sale_id": sale_id, "cancel_reason": "other"})
    assert cancel.status == 200
    path = f"/fulfillment/fulfillments/{fulfillment['id']}"
    ship = await tenant.post(f"{path}/status", {"status": "shipped"})
    assert (ship.status, ship.problem_code) == (409, "conflict")
    await eventually(
        lambda: tenant.get(path),
        lambda a: a.body["status"] == "canceled",
        what="fulfillment canceled",
    )
    await eventually(
        lambda: stock_of(tenant, record), lambda r: r["reserved"] == 0, what="stock released"
    )
    assert await status_of(tenant, sale_id) == "canceled"


async def test_shipping_provider_follows_rules_and_bulky_products(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    bulky = ref("SOFA")
    assert (
        await tenant.post("/products", {"sku": bulky, "name": "Sofa", "is_bulky": True})
    ).status == 201
    assert (
        await tenant.post(
            "/stock/stock-records", {"sku": bulky, "location_id": location, "quantity": 2}
        )
    ).status == 201
    freight, web = ref("S"), ref("S")
    freight_body = sale_body(freight, location, (bulky, 1), (sku, 1))
    freight_body["shop"]["channel"] = "freight"
    assert (await tenant.post("/sales", freight_body)).body["status"] == "pending"
    assert (await tenant.post("/sales", sale_body(web, location, (sku, 1)))).status == 201

    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [freight, web]})
    by_sale = {f["sale_id"]: f for f in init.body["fulfillments"]}
    assert by_sale[freight]["shipping_provider"] == {
        "name": "Fulfil Freight",
        "shipping_provider_id": "fulfil-freight",
    }
    assert by_sale[freight]["tracking_number"].startswith("FF")
    assert by_sale[freight]["is_bulky"] is True
    assert by_sale[web]["shipping_provider"] == {
        "name": "Fulfil Post",
        "shipping_provider_id": "fulfil-post",
    }
    assert by_sale[web]["is_bulky"] is False
    assert by_sale[web]["tracking_number"] != by_sale[freight]["tracking_number"]
    assert set(by_sale[web]) >= {
        "id",
        "sale",
        "location",
        "fulfillment_id",
        "status",
        "shipping_provider",
        "tracking_number",
        "date_created",
        "is_bulky",
    }


async def test_shipping_init_takes_at_most_100_sales(tenant: Client):
    answer = await tenant.post(
        "/fulfillment/shipping/init", {"sale_ids": [ref("S") for _ in range(101)]}
    )
    assert answer.status == 422
    assert {e["field"] for e in answer.body["errors"]} == {"/sale_ids"}


async def test_sales_are_listed_by_status_channel_and_time(tenant: Client):
    web, _, _ = await pending_sale(tenant)
    market, _, _ = await pending_sale(tenant, channel="marketplace")
    await tenant.post("/sales/cancel", {"sale_id": web, "cancel_reason": "other"})

    canceled = await tenant.get("/sales", status="canceled")
    assert [s["sale_id"] for s in canceled.body["data"]] == [web]
    by_channel = await tenant.get("/sales", channel="marketplace")
    assert [s["sale_id"] for s in by_channel.body["data"]] == [market]
    both = await tenant.get("/sales", status=["canceled", "pending"], limit=1)
    assert both.body["pagination"]["total_count"] == 2
    assert 'rel="next"' in both.headers["Link"]
    first = (await tenant.get(f"/sales/{web}")).body["created_at"]
    later = await tenant.get("/sales", created_from=first)
    assert {s["sale_id"] for s in later.body["data"]} == {web, market}
    earlier = await tenant.get("/sales", created_to=first)
    assert earlier.body["data"] == []
