"""A sale's whole path through every service, on the real broker and database."""

import json

from standardwebhooks.webhooks import Webhook

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, Receiver, eventually, ref


async def test_sale_is_reserved_claimed_shipped_and_announced(tenant: Client):
    receiver = await Receiver().start()
    try:
        endpoint = await tenant.post(
            "/webhooks/endpoints",
            {
                "url": receiver.url,
                "event_types": ["sale.*"],
                "description": "erp",
            },
        )
        assert endpoint.status == 201, endpoint
        secret = endpoint.body["secret"]
        sku, location, _ = await stocked_product(tenant, quantity=10)
        sale_id = ref("S")

        created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 3)))
        assert created.status == 201, created
        assert created.body["status"] == "pending"
        assert created.body["reservation"]["lines"][0]["quantity"] == 3

        records = await tenant.get("/stock/stock-records", sku=sku)
        assert records.body["data"][0]["reserved"] == 3
        assert records.body["data"][0]["available"] == 7

        init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
        assert init.status == 200, init
        [fulfillment] = init.body["fulfillments"]
        assert fulfillment["status"] == "waiting_for_picking"
        assert fulfillment["tracking_number"].startswith("FP")
        assert fulfillment["location"]["location_id"] == location
        assert init.body["errors"] == []

        sale = await tenant.get(f"/sales/{sale_id}")
        assert sale.body["status"] == "in_fulfillment"
        assert [h["to_status"] for h in sale.body["status_history"]] == [
            "awaiting_stock",
            "pending",
            "in_fulfillment",
        ]

        got = await tenant.get(f"/fulfillment/fulfillments/{fulfillment['id']}")
        assert got.body["tracking_number"] == fulfillment["tracking_number"]

        def statuses() -> list[str]:
            bodies = [json.loads(r.body) for r in receiver.received]
            return [b["data"]["status"] for b in bodies if b["type"] == "sale.status_changed"]

        async def probe() -> list[str]:
            return statuses()

        await eventually(
            probe,
            lambda s: {"pending", "in_fulfillment"} <= set(s),
            what="webhook deliveries of both status changes",
        )
        verifier = Webhook(secret)
        for request in receiver.received:
            payload = verifier.verify(request.body, request.headers)
            assert payload["data"]["sale_id"] == sale_id
    finally:
        await receiver.stop()


async def test_short_stock_backorders_and_shipping_init_reports_it(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=1)
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 2)))
    assert created.status == 228, created  # created with issues
    assert created.body["status"] == "backordered"
    assert created.body["issues"] == [
        {"sku": sku, "requested": 2, "available": 1, "reason": "insufficient_stock"}
    ]

    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id, "missing"]})
    assert init.status == 200
    assert init.body["fulfillments"] == []
    errors = {e["sale_id"]: e["code"] for e in init.body["errors"]}
    assert errors == {sale_id: "invalid_status", "missing": "not_found"}


async def test_async_create_answers_at_once_and_settles_later(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    created = await tenant.post(
        "/sales", sale_body(sale_id, location, (sku, 1)), headers={"Prefer": "respond-async"}
    )
    assert created.status == 202, created
    assert created.body["status"] == "awaiting_stock"
    await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: a.body["status"] == "pending",
        what="sale pending",
    )


async def test_shipping_init_twice_creates_nothing_new(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    assert (await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))).status == 201
    first = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    second = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    assert first.body["fulfillments"] == second.body["fulfillments"]
    assert len(second.body["fulfillments"]) == 1
