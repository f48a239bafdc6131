"""Creating sales through the gateway: 201 reserved, 228 created with issues (short of
stock), 202 when the client prefers not to wait, 422 for a SKU outside the catalogue (and
nothing created), the same per sale in a batch, and 228 again on an idempotent replay."""

from datetime import datetime
from typing import Any

from fulfilkit.contracts import shop_id
from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Answer, Client, eventually, ref


async def product_at(client: Client, location: str, quantity: int) -> str:
    """A new product with `quantity` on hand at an existing location."""
    sku = ref("SKU")
    assert (await client.post("/products", {"sku": sku, "name": "Jug"})).status == 201
    record = {"sku": sku, "location_id": location, "quantity": quantity}
    assert (await client.post("/stock/stock-records", record)).status == 201
    return sku


def assert_is_sale(body: dict[str, Any], sent: dict[str, Any], status: str) -> None:
    """Every field of a created sale's answer but `issues` and `reservation`."""
    assert set(body) == {
        "id",
        "sale_id",
        "status",
        "version",
        "shop",
        "location_id",
        "lines",
        "customer",
        "shipping_address",
        "priority",
        "instructions",
        "required_dates",
        "invoice_value",
        "cash_on_delivery",
        "properties",
        "cancel_reason",
        "reservation",
        "fulfillments",
        "status_history",
        "created_at",
        "updated_at",
        "issues",
        "allow_split",
        "allocations",
        "shipped_parts",
        "returns",
    }
    assert body["sale_id"] == sent["sale_id"]
    assert body["status"] == status
    assert body["version"] == (1 if status == "awaiting_stock" else 2)
    shop = sent["shop"]
    assert body["shop"] == {**shop, "id": str(shop_id(shop["channel"], shop["shop_name"]))}
    assert body["location_id"] == sent["location_id"]
    assert body["lines"] == sent["lines"]
    assert body["customer"] == sent["customer"]
    assert body["shipping_address"] == sent["shipping_address"]
    assert body["cancel_reason"] is None
    assert body["fulfillments"] == []
    assert body["shipped_parts"] == []
    assert body["returns"] == []
    assert body["allow_split"] is True
    # reserved: one allocation, at the sale's location, of every line (by SKU)
    lines = sorted(
        ({"sku": ln["sku"], "quantity": ln["quantity"]} for ln in sent["lines"]), key=str
    )
    where = [{"location_id": sent["location_id"], "lines": lines}]
    allocations = [a | {"lines": sorted(a["lines"], key=str)} for a in body["allocations"]]
    assert allocations == (where if status == "pending" else [])
    datetime.fromisoformat(body["created_at"])
    datetime.fromisoformat(body["updated_at"])
    moves = [(h["from_status"], h["to_status"], h["reason"]) for h in body["status_history"]]
    expected = [(None, "awaiting_stock", "created")]
    if status != "awaiting_stock":
        reason = "stock_reserved" if status == "pending" else "stock_short"
        expected.append(("awaiting_stock", status, reason))
    assert moves == expected


async def test_a_sale_reserved_in_full_is_201_without_issues(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sent = sale_body(ref("S"), location, (sku, 2))
    created = await tenant.post("/sales", sent)
    assert created.status == 201, created
    assert created.headers["Location"] == f"/api/v1/sales/{sent['sale_id']}"
    assert_is_sale(created.body, sent, "pending")
    assert created.body["issues"] == []
    assert created.body["reservation"]["status"] == "active"


async def test_a_sale_short_of_stock_is_228_with_one_issue_per_short_line(tenant: Client):
    plenty, location, _ = await stocked_product(tenant, quantity=10)
    scarce = await product_at(tenant, location, 1)
    none_left = await product_at(tenant, location, 0)
    sent = sale_body(ref("S"), location, (plenty, 3), (scarce, 2), (none_left, 4))
    created = await tenant.post("/sales", sent)
    assert created.status == 228, created
    assert created.headers["Location"] == f"/api/v1/sales/{sent['sale_id']}"
    assert_is_sale(created.body, sent, "backordered")
    issues = sorted(created.body["issues"], key=lambda i: i["sku"])
    assert issues == sorted(
        [
            {"sku": scarce, "requested": 2, "available": 1, "reason": "insufficient_stock"},
            {"sku": none_left, "requested": 4, "available": 0, "reason": "insufficient_stock"},
        ],
        key=lambda i: i["sku"],
    )
    # the sale exists, backordered with the same issues, and nothing was reserved
    read = await tenant.get(f"/sales/{sent['sale_id']}")
    assert read.status == 200
    assert read.body == created.body
    reserved = await tenant.get("/stock/stock-records", sku=plenty)
    assert reserved.body["data"][0]["reserved"] == 0


async def test_a_sale_at_an_unknown_location_is_228_with_that_reason(tenant: Client):
    sku, _, _ = await stocked_product(tenant, quantity=5)
    sent = sale_body(ref("S"), ref("no-such-wh"), (sku, 1))
    created = await tenant.post("/sales", sent)
    assert created.status == 228, created
    assert created.body["issues"] == [
        {"sku": sku, "requested": 1, "available": 0, "reason": "unknown_location"}
    ]


async def test_respond_async_stays_202_and_the_issues_show_on_the_sale(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=1)
    sent = sale_body(ref("S"), location, (sku, 3))
    created = await tenant.post("/sales", sent, headers={"Prefer": "respond-async"})
    assert created.status == 202, created
    assert created.headers["Preference-Applied"] == "respond-async"
    assert created.headers["Location"] == f"/api/v1/sales/{sent['sale_id']}"
    assert_is_sale(created.body, sent, "awaiting_stock")
    assert (created.body["issues"], created.body["reservation"]) == ([], None)
    later = await eventually(
        lambda: tenant.get(f"/sales/{sent['sale_id']}"),
        lambda answer: answer.body["status"] == "backordered",
        what="the sale backordered",
    )
    short = [{"sku": sku, "requested": 3, "available": 1, "reason": "insufficient_stock"}]
    assert later.body["issues"] == later.body["reservation"]["shortfalls"] == short
    # a restock reserves it: no issue left
    restock = {"sku": sku, "location_id": location, "quantity": 5, "update_type": "restock"}
    assert (await tenant.post("/stock/stock-level-updates", restock)).status in (200, 201)
    reserved = await eventually(
        lambda: tenant.get(f"/sales/{sent['sale_id']}"),
        lambda answer: answer.body["status"] == "pending",
        what="the sale reserved after the restock",
    )
    assert reserved.body["issues"] == []


async def test_a_sku_outside_the_catalogue_is_422_with_a_pointer_and_nothing_is_created(
    tenant: Client,
):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    missing = ref("NO-SUCH-SKU")
    sent = sale_body(ref("S"), location, (sku, 1), (sku, 1), (sku, 1), (missing, 1))
    refused = await tenant.post("/sales", sent)
    assert refused.status == 422, refused
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.body == {
        "type": "urn:fulfil:problem:validation",
        "title": refused.body["title"],
        "status": 422,
        "detail": "The sale names SKUs that are not in the catalogue; create the products first.",
        "code": "validation",
        "errors": [
            {
                "field": "/lines/3/sku",
                "message": f"No product with sku {missing!r} in the catalogue.",
                "in": "body",
            }
        ],
    }
    assert (await tenant.get(f"/sales/{sent['sale_id']}")).status == 404
    listed = await tenant.get("/sales")
    assert listed.body["data"] == []
    # the same sale_id is free: with the product created, the sale goes through
    assert (await tenant.post("/products", {"sku": missing, "name": "New"})).status == 201
    again = await tenant.post("/sales", sent)
    assert again.status == 228, again
    assert again.body["issues"] == [
        {"sku": missing, "requested": 1, "available": 0, "reason": "insufficient_stock"}
    ]


async def test_a_product_created_a_moment_ago_can_be_sold_at_once(tenant: Client):
    location = ref("wh")
    assert (await tenant.post("/locations", {"location_id": location, "name": "W"})).status == 201
    for _ in range(3):
        sku = ref("SKU")
        assert (await tenant.post("/products", {"sku": sku, "name": "Fresh"})).status == 201
        created = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 1)))
        assert created.status == 228, created  # known, though nothing is on hand yet


async def test_a_batch_reports_issues_per_sale_and_refuses_unknown_skus_alone(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=3)
    scarce = await product_at(tenant, location, 1)
    missing = ref("NO-SUCH-SKU")
    reserved = sale_body(ref("S"), location, (sku, 2))
    short = sale_body(ref("S"), location, (scarce, 5))
    unknown = sale_body(ref("S"), location, (sku, 1), (missing, 1))
    answer = await tenant.post("/sales/batch", {"sales": [reserved, short, unknown]})
    assert answer.status == 200, answer
    [first, second] = answer.body["sales"]
    assert_is_sale(first, reserved, "pending")
    assert first["issues"] == []
    assert_is_sale(second, short, "backordered")
    assert second["issues"] == [
        {"sku": scarce, "requested": 5, "available": 1, "reason": "insufficient_stock"}
    ]
    assert answer.body["errors"] == [
        {
            "sale_id": unknown["sale_id"],
            "index": 2,
            "code": "validation",
            "detail": "The sale names SKUs that are not in the catalogue; create the products"
            " first.",
            "errors": [
                {
                    "field": "/sales/2/lines/1/sku",
                    "message": f"No product with sku {missing!r} in the catalogue.",
                }
            ],
        }
    ]
    assert (await tenant.get(f"/sales/{unknown['sale_id']}")).status == 404


async def test_an_idempotent_replay_of_a_228_answers_228(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=1)
    sent = sale_body(ref("S"), location, (sku, 2))
    key = {"Idempotency-Key": ref("key")}
    first = await tenant.post("/sales", sent, headers=key)
    assert first.status == 228, first
    replayed: Answer = await tenant.post("/sales", sent, headers=key)
    assert replayed.status == 228, replayed
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.body == first.body
    assert replayed.body["issues"] == [
        {"sku": sku, "requested": 2, "available": 1, "reason": "insufficient_stock"}
    ]


async def test_the_merged_openapi_documents_228_and_the_issues(tenant: Client):
    async with tenant.session.get(f"{tenant.base_url}/openapi.json") as response:
        document = await response.json()
    responses = document["paths"]["/api/v1/sales"]["post"]["responses"]
    assert {"201", "202", "228", "422"} <= set(responses)
    assert "Created with issues" in responses["228"]["description"]
    schemas = document["components"]["schemas"]
    ref_228 = responses["228"]["content"]["application/json"]["schema"]["$ref"]
    created = schemas[ref_228.rsplit("/", 1)[1]]
    issue_ref = created["properties"]["issues"]["items"]["$ref"]
    issue = schemas[issue_ref.rsplit("/", 1)[1]]
    assert set(issue["properties"]) == {
        "sku",
        "requested",
        "available",
        "reason",
        "preorder",
        "expected_at",
    }
    assert issue["properties"]["reason"]["enum"] == [
        "insufficient_stock",
        "unknown_location",
        "unknown_sku",
        "backorder_denied",  # stock policies: the product's backorders are denied
    ]
