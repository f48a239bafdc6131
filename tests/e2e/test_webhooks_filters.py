"""Endpoint filters on the target status, through the gateway: validated, PATCH-able, and only
the status changes they name become deliveries."""

from typing import Any

from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.webhook_tools import deliveries, register
from tests.support import Client, eventually, ref

STATUS_TYPES = ["sale.status_changed", "fulfillment.status_changed"]
UNREACHABLE = "http://127.0.0.1:9/erp"  # nothing listens: deliveries stay listed, pending


async def test_filters_are_stored_shown_and_patched(tenant: Client):
    filters = {
        "sale.status_changed": {"status": ["shipped", "canceled", "shipped"]},
        "fulfillment.status_changed": {"status": ["delivered"]},
    }
    created = await tenant.post(
        "/webhooks/endpoints",
        {"url": UNREACHABLE, "event_types": STATUS_TYPES, "filters": filters},
    )
    assert created.status == 201, created
    assert created.body["filters"] == {
        "sale.status_changed": {"status": ["shipped", "canceled"]},
        "fulfillment.status_changed": {"status": ["delivered"]},
    }
    path = f"/webhooks/endpoints/{created.body['id']}"
    got = await tenant.get(path)
    assert (got.status, got.headers["ETag"]) == (200, '"1"')
    assert got.body["filters"] == created.body["filters"]

    stale = await tenant.call("PATCH", path, json={"filters": {}}, headers={"If-Match": '"7"'})
    assert (stale.status, stale.problem_code) == (409, "conflict"), stale
    narrowed = await tenant.call(
        "PATCH",
        path,
        json={"filters": {"sale.status_changed": {"status": ["delivered"]}}},
        headers={"If-Match": '"1"'},
    )
    assert narrowed.status == 200, narrowed
    assert narrowed.body["filters"] == {"sale.status_changed": {"status": ["delivered"]}}
    assert (narrowed.body["version"], narrowed.headers["ETag"]) == (2, '"2"')
    assert narrowed.body["event_types"] == STATUS_TYPES, "other fields are left alone"

    other = await tenant.call("PATCH", path, json={"description": "ERP"})
    assert other.body["filters"] == narrowed.body["filters"], "a PATCH without filters keeps them"
    cleared = await tenant.call("PATCH", path, json={"filters": {}})
    assert (cleared.status, cleared.body["filters"]) == (200, {})

    listed = await tenant.get("/webhooks/endpoints")
    [shown] = [e for e in listed.body["data"] if e["id"] == created.body["id"]]
    assert shown["filters"] == {}

    plain = await register(tenant, UNREACHABLE)
    assert plain["filters"] == {}, "no filters: every event of the subscribed types"


async def _refused(client: Client, filters: Any, method: str = "POST", path: str = "") -> list:
    body = {"filters": filters} if method == "PATCH" else {"url": UNREACHABLE, "filters": filters}
    answer = await client.call(method, path or "/webhooks/endpoints", json=body)
    assert (answer.status, answer.problem_code) == (422, "validation"), answer
    return [(e["field"], e["in"]) for e in answer.body["errors"]]


async def test_unknown_types_and_statuses_are_422_with_a_pointer(tenant: Client):
    assert await _refused(tenant, {"stock.changed": {"status": ["shipped"]}}) == [
        ("/filters/stock.changed", "body")
    ]
    assert await _refused(tenant, {"sale.status_changed": {"status": ["shipped", "packed"]}}) == [
        ("/filters/sale.status_changed/status/1", "body")
    ]
    assert await _refused(tenant, {"fulfillment.status_changed": {"status": ["backordered"]}}) == [
        ("/filters/fulfillment.status_changed/status/0", "body")
    ]
    assert await _refused(tenant, {"sale.status_changed": {"status": []}}) == [
        ("/filters/sale.status_changed/status", "body")
    ]
    assert await _refused(tenant, {"sale.status_changed": {"state": ["shipped"]}}) == [
        ("/filters/sale.status_changed/status", "body"),
        ("/filters/sale.status_changed/state", "body"),
    ]
    assert await _refused(tenant, ["sale.status_changed"]) == [("/filters", "body")]

    endpoint = await register(tenant, UNREACHABLE)
    path = f"/webhooks/endpoints/{endpoint['id']}"
    assert await _refused(tenant, {"sale.*": {"status": ["shipped"]}}, "PATCH", path) == [
        ("/filters/sale.*", "body")
    ]
    unchanged = await tenant.get(path)
    assert (unchanged.body["filters"], unchanged.body["version"]) == ({}, 1)

    endpoints = (await tenant.get("/webhooks/endpoints")).body["data"]
    assert [e["id"] for e in endpoints] == [endpoint["id"]], "a refused create makes nothing"


def _moves(found: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(type, what moved, its new status) of each delivery."""
    return {
        (d["event_type"], d["payload"]["data"]["fulfillment_id"], d["payload"]["data"]["status"])
        if d["event_type"].startswith("fulfillment.")
        else (d["event_type"], d["payload"]["data"]["sale_id"], d["payload"]["data"]["status"])
        for d in found
    }


async def test_only_the_filtered_statuses_become_deliveries(tenant: Client):
    filtered = await register(
        tenant,
        UNREACHABLE,
        event_types=STATUS_TYPES,
        filters={
            "sale.status_changed": {"status": ["shipped", "canceled"]},
            "fulfillment.status_changed": {"status": ["packed"]},
        },
    )
    # Same subscription, no filters: once it has an event's delivery, the filtered endpoint's
    # fate for that event is decided too (one transaction plans both).
    control = await register(tenant, UNREACHABLE, event_types=STATUS_TYPES)

    sku, location, _ = await stocked_product(tenant, quantity=10)
    canceled, shipped = ref("S"), ref("S")
    for sale_id in (canceled, shipped):
        created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
        assert created.body["status"] == "pending", created
    cancel = await tenant.post(
        "/sales/cancel", {"sale_id": canceled, "cancel_reason": "customer_request"}
    )
    assert cancel.status == 200, cancel
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [shipped]})
    assert init.status == 200 and not init.body["errors"], init
    [fulfillment] = init.body["fulfillments"]
    fulfillment_id = fulfillment["fulfillment_id"]
    for status in ("picking", "packed", "shipped"):
        moved = await tenant.post(
            "/fulfillment/fulfillments/status",
            {"updates": [{"id": fulfillment["id"], "status": status}]},
        )
        assert moved.status == 200 and not moved.body["errors"], moved

    every_move = {
        ("sale.status_changed", canceled, "canceled"),
        ("sale.status_changed", shipped, "in_fulfillment"),
        ("sale.status_changed", shipped, "shipped"),
        ("fulfillment.status_changed", fulfillment_id, "picking"),
        ("fulfillment.status_changed", fulfillment_id, "packed"),
        ("fulfillment.status_changed", fulfillment_id, "shipped"),
    }
    await eventually(
        lambda: deliveries(tenant, control["id"], limit=100),
        lambda found: every_move <= _moves(found),
        what="every status change delivered to the unfiltered endpoint",
    )

    found = await deliveries(tenant, filtered["id"], limit=100)
    assert _moves(found) == {
        ("sale.status_changed", canceled, "canceled"),
        ("sale.status_changed", shipped, "shipped"),
        ("fulfillment.status_changed", fulfillment_id, "packed"),
    }
    assert len(found) == 3, "one delivery per matching event"
    for delivery in found:
        assert delivery["payload"]["type"] == delivery["event_type"]
        assert (
            delivery["payload"]["data"]["previous_status"] != delivery["payload"]["data"]["status"]
        )


async def test_a_patched_filter_applies_to_the_next_events(tenant: Client):
    endpoint = await register(
        tenant,
        UNREACHABLE,
        event_types=["sale.status_changed"],
        filters={"sale.status_changed": {"status": ["shipped"]}},
    )
    control = await register(tenant, UNREACHABLE, event_types=["sale.status_changed"])
    sku, location, _ = await stocked_product(tenant, quantity=10)

    async def cancel_a_sale() -> str:
        sale_id = ref("S")
        created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
        assert created.body["status"] == "pending", created
        canceled = await tenant.post(
            "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
        )
        assert canceled.status == 200, canceled
        await eventually(
            lambda: deliveries(tenant, control["id"], limit=100),
            lambda found: ("sale.status_changed", sale_id, "canceled") in _moves(found),
            what=f"the cancel of {sale_id} delivered to the unfiltered endpoint",
        )
        return sale_id

    before = await cancel_a_sale()
    assert await deliveries(tenant, endpoint["id"]) == [], "canceled is not shipped"

    patched = await tenant.call(
        "PATCH",
        f"/webhooks/endpoints/{endpoint['id']}",
        json={"filters": {"sale.status_changed": {"status": ["canceled"]}}},
    )
    assert patched.status == 200, patched
    after = await cancel_a_sale()
    found = await deliveries(tenant, endpoint["id"])
    assert _moves(found) == {("sale.status_changed", after, "canceled")}
    assert before != after
