"""Stock policies per product, through the gateway: the out-of-stock threshold (`sellable`),
backorders denied or capped (422 at create, `backorder_denied` when asynchronous, nothing
reserved), infinite products, pre-order terms on a backordered sale's issues, and the
product's view of its stock. Concurrent sales never take more than the policy allows."""

import asyncio
from typing import Any

from tests.support import Client, eventually, ref

SHOP = {"channel": "web", "shop_name": "Policy shop"}


async def location(client: Client) -> str:
    code = ref("wh")
    answer = await client.post("/locations", {"location_id": code, "name": "Warehouse"})
    assert answer.status == 201, answer
    return code


async def product(client: Client, at: str | None, quantity: int, **policies: Any) -> str:
    """A new product with these policies and, at `at`, `quantity` on hand."""
    sku = ref("SKU")
    created = await client.post("/products", {"sku": sku, "name": "Widget", **policies})
    assert created.status == 201, created
    if at is not None:
        record = {"sku": sku, "location_id": at, "quantity": quantity}
        assert (await client.post("/stock/stock-records", record)).status == 201
    return sku


def sale(at: str, *lines: tuple[str, int]) -> dict[str, Any]:
    return {
        "sale_id": ref("S"),
        "shop": SHOP,
        "location_id": at,
        "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
    }


async def record_of(client: Client, sku: str) -> dict[str, Any]:
    [record] = (await client.get("/stock/stock-records", sku=sku)).body["data"]
    return record


async def test_a_product_shows_its_policies_and_their_defaults(tenant: Client):
    plain = await product(tenant, None, 0)
    body = (await tenant.get(f"/products/{plain}")).body
    assert (
        body["backorders"],
        body["out_of_stock_threshold"],
        body["preorder"],
        body["infinite"],
    ) == ("allow", 0, None, False)
    terms = {"expected_at": "2027-03-01T00:00:00Z", "lead_time_days": 21}
    sku = ref("SKU")
    sent = {
        "sku": sku,
        "name": "Widget",
        "backorders": {"cap": 7},
        "out_of_stock_threshold": 2,
        "preorder": terms,
        "infinite": False,
    }
    created = await tenant.post("/products", sent)
    assert created.status == 201, created
    fetched = (await tenant.get(f"/products/{sku}")).body
    for body in (created.body, fetched):
        assert body["backorders"] == {"cap": 7}
        assert body["out_of_stock_threshold"] == 2
        assert body["preorder"]["lead_time_days"] == 21
        assert body["preorder"]["expected_at"].startswith("2027-03-01T00:00:00")
        assert body["infinite"] is False


async def test_invalid_policies_are_422_with_pointers(tenant: Client):
    answer = await tenant.post(
        "/products",
        {
            "sku": ref("SKU"),
            "name": "Widget",
            "backorders": "sometimes",
            "out_of_stock_threshold": -1,
            "preorder": {"lead_time_days": -3},
            "infinite": "yes",
        },
    )
    assert answer.status == 422, answer
    fields = {e["field"] for e in answer.body["errors"]}
    assert {"/out_of_stock_threshold", "/preorder/lead_time_days", "/infinite"} <= fields
    assert "/backorders" in fields
    cap = await tenant.post("/products", {"sku": ref("SKU"), "name": "W", "backorders": {"cap": 0}})
    assert cap.status == 422, cap
    assert [e["field"] for e in cap.body["errors"]] == ["/backorders"]


async def test_the_threshold_holds_units_back_and_shows_as_sellable(tenant: Client):
    at = await location(tenant)
    sku = await product(tenant, at, 5, out_of_stock_threshold=2)
    record = await record_of(tenant, sku)
    assert (record["quantity"], record["reserved"], record["available"], record["sellable"]) == (
        5,
        0,
        5,
        3,
    )
    short = await tenant.post("/sales", sale(at, (sku, 4)))
    assert short.status == 228, short
    assert short.body["issues"] == [
        {"sku": sku, "requested": 4, "available": 3, "reason": "insufficient_stock"}
    ]
    fits = await tenant.post("/sales", sale(at, (sku, 3)))
    assert fits.status == 201, fits
    record = await record_of(tenant, sku)
    assert (record["reserved"], record["available"], record["sellable"]) == (3, 2, 0)


async def test_concurrent_sales_never_dip_into_the_threshold(tenant: Client):
    at = await location(tenant)
    sku = await product(tenant, at, 10, out_of_stock_threshold=4)
    answers = await asyncio.gather(*(tenant.post("/sales", sale(at, (sku, 1))) for _ in range(12)))
    assert sorted(a.status for a in answers) == [201] * 6 + [228] * 6
    record = await record_of(tenant, sku)
    assert (record["reserved"], record["sellable"]) == (6, 0)


async def test_deny_is_422_at_create_and_reserves_nothing(tenant: Client):
    at = await location(tenant)
    plenty = await product(tenant, at, 10)
    denied = await product(tenant, at, 1, backorders="deny")
    sent = sale(at, (plenty, 2), (denied, 3))
    answer = await tenant.post("/sales", sent)
    assert answer.status == 422, answer
    assert answer.problem_code == "validation"
    assert answer.body["errors"] == [
        {
            "field": "/lines/1/quantity",
            "in": "body",
            "message": f"backorders of {denied!r} are denied: 3 asked, 1 sellable",
        }
    ]
    stored = (await tenant.get(f"/sales/{sent['sale_id']}")).body
    assert (stored["status"], stored["cancel_reason"]) == ("canceled", "backorder_denied")
    assert stored["issues"] == [
        {"sku": denied, "requested": 3, "available": 1, "reason": "backorder_denied"}
    ]
    moves = [(h["from_status"], h["to_status"], h["reason"]) for h in stored["status_history"]]
    assert moves == [
        (None, "awaiting_stock", "created"),
        ("awaiting_stock", "canceled", "backorder_denied"),
    ]
    for sku in (plenty, denied):
        assert (await record_of(tenant, sku))["reserved"] == 0
    # a sale the stock covers is reserved as usual
    assert (await tenant.post("/sales", sale(at, (denied, 1)))).status == 201


async def test_deny_without_waiting_ends_canceled_with_backorder_denied(tenant: Client):
    at = await location(tenant)
    denied = await product(tenant, None, 0, backorders="deny")  # no record at all
    sent = sale(at, (denied, 1))
    created = await tenant.post("/sales", sent, headers={"Prefer": "respond-async"})
    assert created.status == 202, created
    later = await eventually(
        lambda: tenant.get(f"/sales/{sent['sale_id']}"),
        lambda answer: answer.body["status"] == "canceled",
        what="the sale canceled",
    )
    assert later.body["cancel_reason"] == "backorder_denied"
    short = [{"sku": denied, "requested": 1, "available": 0, "reason": "backorder_denied"}]
    assert later.body["issues"] == later.body["reservation"]["shortfalls"] == short
    # not queued: stock arriving later reserves nothing for it
    record = {"sku": denied, "location_id": at, "quantity": 5}
    assert (await tenant.post("/stock/stock-records", record)).status == 201
    fits = await tenant.post("/sales", sale(at, (denied, 1)))
    assert fits.status == 201, fits
    assert (await record_of(tenant, denied))["reserved"] == 1
    assert (await tenant.get(f"/sales/{sent['sale_id']}")).body["status"] == "canceled"


async def test_a_cap_bounds_the_units_waiting_for_stock(tenant: Client):
    at = await location(tenant)
    sku = await product(tenant, at, 0, backorders={"cap": 3})
    first = await tenant.post("/sales", sale(at, (sku, 2)))
    assert first.status == 228, first
    over = await tenant.post("/sales", sale(at, (sku, 2)))
    assert over.status == 422, over
    assert over.body["errors"][0]["field"] == "/lines/0/quantity"
    last = await tenant.post("/sales", sale(at, (sku, 1)))
    assert last.status == 228, last


async def test_concurrent_sales_never_queue_more_than_the_cap(tenant: Client):
    at = await location(tenant)
    sku = await product(tenant, at, 0, backorders={"cap": 4})
    answers = await asyncio.gather(*(tenant.post("/sales", sale(at, (sku, 1))) for _ in range(10)))
    assert sorted(a.status for a in answers) == [228] * 4 + [422] * 6
    # the four waiting are reserved once stock arrives; nothing else is
    [record] = (await tenant.get("/stock/stock-records", sku=sku)).body["data"]
    change = {"stock_records": [{"id": record["id"], "quantity_change": 10}]}
    assert (await tenant.post("/stock/stock-records/change", change)).status == 200
    await eventually(
        lambda: record_of(tenant, sku),
        lambda r: r["reserved"] == 4,
        what="the capped backorders reserved",
    )


async def test_an_infinite_product_is_never_reserved_nor_depleted(tenant: Client):
    at = await location(tenant)
    finite = await product(tenant, at, 2)
    endless = await product(tenant, at, 0, infinite=True)
    unstocked = await product(tenant, None, 0, infinite=True, backorders="deny")
    answer = await tenant.post("/sales", sale(at, (finite, 2), (endless, 500), (unstocked, 9)))
    assert answer.status == 201, answer
    assert answer.body["issues"] == []
    lines = answer.body["reservation"]["lines"]
    assert [(ln["sku"], ln["quantity"]) for ln in lines] == [(finite, 2)]
    record = await record_of(tenant, endless)
    assert (record["quantity"], record["reserved"]) == (0, 0)
    assert (await record_of(tenant, finite))["reserved"] == 2


async def test_a_backordered_line_shows_its_products_preorder(tenant: Client):
    at = await location(tenant)
    terms = {"expected_at": "2027-01-15T09:00:00Z", "lead_time_days": 10}
    sku = await product(tenant, at, 1, preorder=terms)
    answer = await tenant.post("/sales", sale(at, (sku, 3)))
    assert answer.status == 228, answer
    [issue] = answer.body["issues"]
    assert (issue["sku"], issue["requested"], issue["available"], issue["reason"]) == (
        sku,
        3,
        1,
        "insufficient_stock",
    )
    assert issue["preorder"]["lead_time_days"] == 10
    assert issue["preorder"]["expected_at"].startswith("2027-01-15T09:00:00")


async def test_patching_a_policy_applies_to_the_next_sale(tenant: Client):
    at = await location(tenant)
    sku = await product(tenant, at, 1)
    patched = await tenant.call("PATCH", f"/products/{sku}", json={"backorders": "deny"})
    assert patched.status == 200, patched
    assert (patched.body["backorders"], patched.body["version"]) == ("deny", 2)
    assert (await tenant.post("/sales", sale(at, (sku, 2)))).status == 422
    again = await tenant.call(
        "PATCH", f"/products/{sku}", json={"backorders": "allow", "out_of_stock_threshold": 1}
    )
    assert again.status == 200, again
    assert (await record_of(tenant, sku))["sellable"] == 0
    assert (await tenant.post("/sales", sale(at, (sku, 1)))).status == 228


async def test_the_product_view_shows_total_and_per_location_stock(tenant: Client):
    north, south = await location(tenant), await location(tenant)
    sku = await product(tenant, north, 7, out_of_stock_threshold=1)
    record = {"sku": sku, "location_id": south, "quantity": 3}
    assert (await tenant.post("/stock/stock-records", record)).status == 201
    assert (await tenant.post("/sales", sale(north, (sku, 2)))).status == 201
    body = (await tenant.get(f"/products/{sku}")).body
    assert body["stock_level"] == {"quantity": 10, "reserved": 2, "available": 8, "sellable": 6}
    assert sorted(body["location_stock_levels"], key=lambda lv: lv["location_id"]) == sorted(
        [
            {"location_id": north, "quantity": 7, "reserved": 2, "available": 5, "sellable": 4},
            {"location_id": south, "quantity": 3, "reserved": 0, "available": 3, "sellable": 2},
        ],
        key=lambda lv: lv["location_id"],
    )
    bare = (await tenant.get(f"/products/{await product(tenant, None, 0)}")).body
    assert bare["stock_level"] == {"quantity": 0, "reserved": 0, "available": 0, "sellable": 0}
    assert bare["location_stock_levels"] == []


async def test_a_policy_that_frees_stock_retries_the_waiting_sales(tenant: Client):
    at = await location(tenant)
    held = await product(tenant, at, 3, out_of_stock_threshold=3)
    waiting = sale(at, (held, 2))
    assert (await tenant.post("/sales", waiting)).status == 228
    lowered = await tenant.call("PATCH", f"/products/{held}", json={"out_of_stock_threshold": 1})
    assert lowered.status == 200, lowered
    await eventually(
        lambda: tenant.get(f"/sales/{waiting['sale_id']}"),
        lambda answer: answer.body["status"] == "pending",
        what="the sale reserved once the threshold fell",
    )
    assert (await record_of(tenant, held))["sellable"] == 0

    service = await product(tenant, None, 0)
    queued = sale(at, (service, 1))
    assert (await tenant.post("/sales", queued)).status == 228
    endless = await tenant.call("PATCH", f"/products/{service}", json={"infinite": True})
    assert endless.status == 200, endless
    reserved = await eventually(
        lambda: tenant.get(f"/sales/{queued['sale_id']}"),
        lambda answer: answer.body["status"] == "pending",
        what="the sale reserved once its product became infinite",
    )
    assert (reserved.body["issues"], reserved.body["reservation"]["lines"]) == ([], [])


async def test_a_batch_lists_a_denied_sale_canceled_with_its_issues(tenant: Client):
    at = await location(tenant)
    denied = await product(tenant, at, 0, backorders="deny")
    fits = await product(tenant, at, 5)
    refused, reserved = sale(at, (denied, 1)), sale(at, (fits, 1))
    answer = await tenant.post("/sales/batch", {"sales": [refused, reserved]})
    assert answer.status == 200, answer
    assert answer.body["errors"] == []
    by_id = {s["sale_id"]: s for s in answer.body["sales"]}
    assert (by_id[refused["sale_id"]]["status"], by_id[refused["sale_id"]]["cancel_reason"]) == (
        "canceled",
        "backorder_denied",
    )
    assert by_id[refused["sale_id"]]["issues"] == [
        {"sku": denied, "requested": 1, "available": 0, "reason": "backorder_denied"}
    ]
    assert (by_id[reserved["sale_id"]]["status"], by_id[reserved["sale_id"]]["issues"]) == (
        "pending",
        [],
    )
