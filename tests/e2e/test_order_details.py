"""A sale's optional details through the gateway, against real Kafka and PostgreSQL: each field
as answered, stored, published and listed, and each invalid one refused with a 422 pointing
at it (docs/api-guide.md, "Order details")."""

from typing import Any

import pytest

from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.test_hostile_input import assert_problem, no_sale
from tests.e2e.webhook_tools import polled, register, started
from tests.support import Client, eventually, ref

DETAILS: dict[str, Any] = {
    "priority": "urgent",
    "instructions": "Leave at the back door; ring twice.",
    "required_dates": {"ship_by": "2026-12-01T12:00:00Z", "deliver_by": "2026-12-03T18:00:00Z"},
    "invoice_value": {"amount": "149.90", "currency": "EUR"},
    "cash_on_delivery": {"amount": "0.5", "currency": "JPY"},
    "properties": {"gift": True, "gift_message": "Happy birthday", "points": 12, "rate": 1.5},
    "shipping_address": {
        "name": "Ada Lovelace",
        "company": "Analytical Engines Ltd",
        "lines": ["12 St James's Square", "Floor 2"],
        "city": "London",
        "region": "Greater London",
        "postcode": "SW1Y 4JH",
        "country": "GB",
        "phone": "+44 20 7946 0000",
        "email": "ada@example.com",
    },
}


def detailed(sale_id: str, location: str, sku: str) -> dict[str, Any]:
    body = sale_body(sale_id, location, (sku, 2)) | DETAILS
    body["lines"][0]["properties"] = {"engraving": "A.L.", "size": 42}
    return body


def assert_details(sale: dict[str, Any], sent: dict[str, Any]) -> None:
    """Every detail field as sent (dates in UTC as the platform writes them)."""
    assert sale["priority"] == sent["priority"]
    assert sale["instructions"] == sent["instructions"]
    assert sale["required_dates"] == {
        "ship_by": "2026-12-01T12:00:00Z",
        "deliver_by": "2026-12-03T18:00:00Z",
    }
    assert sale["invoice_value"] == {"amount": "149.90", "currency": "EUR"}
    assert sale["cash_on_delivery"] == {"amount": "0.5", "currency": "JPY"}
    assert sale["properties"] == {
        "gift": True,
        "gift_message": "Happy birthday",
        "points": 12,
        "rate": 1.5,
    }
    assert sale["shipping_address"] == sent["shipping_address"]
    assert sale["lines"] == [
        {
            "sku": sent["lines"][0]["sku"],
            "quantity": 2,
            "properties": {"engraving": "A.L.", "size": 42},
        }
    ]


async def test_a_sale_keeps_its_details_in_answers_and_events(tenant: Client):
    hook = await started()
    try:
        await register(tenant, hook.url, event_types=["sale.created"])
        sku, location, _ = await stocked_product(tenant, quantity=5)
        sale_id = ref("S")
        body = detailed(sale_id, location, sku)

        created = await tenant.post("/sales", body)
        assert created.status == 201 and created.body["status"] == "pending", created
        assert_details(created.body, body)
        read = await tenant.get(f"/sales/{sale_id}")
        assert read.status == 200, read
        assert_details(read.body, body)

        arrivals = await eventually(
            polled(lambda: [a for a in hook.received if a.json["data"]["sale_id"] == sale_id]),
            lambda found: len(found) == 1,
            what="the sale.created delivery",
        )
        assert arrivals[0].type == "sale.created"
        assert_details(arrivals[0].json["data"], body)
    finally:
        await hook.stop()


async def test_a_sale_without_details_has_their_defaults(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    body = sale_body(sale_id, location, (sku, 1))
    created = await tenant.post("/sales", body)
    assert created.status == 201, created
    sale = created.body
    assert sale["priority"] == "normal"
    for field in ("instructions", "required_dates", "invoice_value", "cash_on_delivery"):
        assert sale[field] is None, field
    assert sale["properties"] is None
    assert sale["lines"] == [{"sku": sku, "quantity": 1}]  # no `properties` key on lines
    assert sale["shipping_address"] == {"city": "Oslo", "country": "NO"}


async def test_a_legacy_free_form_address_is_mapped(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    body = sale_body(sale_id, location, (sku, 1)) | {
        "shipping_address": {
            "contactName": "Mr Smith",
            "companyName": "Company A",
            "address1": "Unit 2",
            "address2": "1 Main Street",
            "town": "Metropolis",
            "state": "QLD",
            "zip": "4000",
            "country_code": "au",
        }
    }
    created = await tenant.post("/sales", body)
    assert created.status == 201, created
    assert created.body["shipping_address"] == {
        "name": "Mr Smith",
        "company": "Company A",
        "lines": ["Unit 2", "1 Main Street"],
        "city": "Metropolis",
        "region": "QLD",
        "postcode": "4000",
        "country": "AU",
    }


@pytest.mark.parametrize(
    ("fields", "pointers", "message"),
    [
        ({"priority": "high"}, ["/priority"], "'normal' or 'urgent'"),
        ({"instructions": "x" * 1001}, ["/instructions"], "at most 1000"),
        ({"instructions": 5}, ["/instructions"], "valid string"),
        (
            {"required_dates": {"ship_by": "2026-12-01T12:00:00"}},
            ["/required_dates/ship_by"],
            "timezone",
        ),
        (
            {"required_dates": {"ship_by": "tomorrow"}},
            ["/required_dates/ship_by"],
            "ISO 8601",
        ),
        (
            {
                "required_dates": {
                    "ship_by": "2026-12-02T00:00:00Z",
                    "deliver_by": "2026-12-01T00:00:00Z",
                }
            },
            ["/required_dates/deliver_by"],
            "must not be before ship_by",
        ),
        (
            {"required_dates": {"ship_at": "2026-12-02T00:00:00Z"}},
            ["/required_dates/ship_at"],
            "Extra",
        ),
        ({"invoice_value": {"amount": 10, "currency": "EUR"}}, ["/invoice_value/amount"], "string"),
        (
            {"invoice_value": {"amount": "1e3", "currency": "EUR"}},
            ["/invoice_value/amount"],
            "pattern",
        ),
        (
            {"invoice_value": {"amount": "-5", "currency": "EUR"}},
            ["/invoice_value/amount"],
            "pattern",
        ),
        (
            {"invoice_value": {"amount": "1.23456", "currency": "EUR"}},
            ["/invoice_value/amount"],
            "pattern",
        ),
        ({"invoice_value": {"amount": "5"}}, ["/invoice_value/currency"], "Field required"),
        (
            {"cash_on_delivery": {"amount": "5", "currency": "EUX"}},
            ["/cash_on_delivery/currency"],
            "ISO 4217",
        ),
        (
            {"cash_on_delivery": {"amount": "5", "currency": "eur"}},
            ["/cash_on_delivery/currency"],
            "pattern",
        ),
        ({"properties": {"a": None}}, ["/properties/a"], "text, a number or a boolean"),
        ({"properties": {"a": {"b": 1}}}, ["/properties/a"], "text, a number or a boolean"),
        ({"properties": {"a": "x" * 501}}, ["/properties/a"], "at most 500 characters"),
        ({"properties": {"a": 10**15 + 1}}, ["/properties/a"], "within ±1e15"),
        ({"properties": {"a": -1.5e15}}, ["/properties/a"], "within ±1e15"),
        ({"properties": {"k" * 65: 1}}, ["/properties"], "keys must be 1-64 characters"),
        ({"properties": {f"k{i}": 1 for i in range(51)}}, ["/properties"], "at most 50"),
        ({"properties": {f"k{i}": "x" * 500 for i in range(20)}}, ["/properties"], "at most 8192"),
        ({"properties": ["a"]}, ["/properties"], "valid dictionary"),
        ({"shipping_address": {"country": "XX"}}, ["/shipping_address/country"], "ISO 3166-1"),
        ({"shipping_address": {"country": "FRA"}}, ["/shipping_address/country"], "at most 2"),
        ({"shipping_address": {"email": "not-an-email"}}, ["/shipping_address/email"], "pattern"),
        ({"shipping_address": {"phone": "call me"}}, ["/shipping_address/phone"], "pattern"),
        ({"shipping_address": {"lines": []}}, ["/shipping_address/lines"], "at least 1"),
        (
            {"shipping_address": {"lines": ["a", "b", "c", "d"]}},
            ["/shipping_address/lines"],
            "at most 3",
        ),
        ({"shipping_address": {"city": "x" * 201}}, ["/shipping_address/city"], "at most 200"),
        ({"shipping_address": {"zip": 75001}}, ["/shipping_address/zip"], "valid string"),
        ({"shipping_address": {"door": "A"}}, ["/shipping_address/door"], "Extra"),
        ({"shipping_address": {"zip": "1", "postcode": "2"}}, ["/shipping_address"], "same field"),
        ({"shipping_address": {"lines": ["a"], "street": "b"}}, ["/shipping_address"], "not both"),
        ({"shipping_address": {"a": {"b": 1}}}, ["/shipping_address/a"], "Extra"),
    ],
)
async def test_each_invalid_detail_is_refused_at_its_field(
    tenant: Client, fields: dict[str, Any], pointers: list[str], message: str
):
    body = sale_body(ref("S"), "wh-1", ("SKU-1", 1)) | fields
    answer = await tenant.post("/sales", body)
    problem = assert_problem(answer, "validation", pointers, where="body")
    assert message in problem["errors"][0]["message"], problem
    await no_sale(tenant, body["sale_id"])


@pytest.mark.parametrize(
    ("properties", "pointer", "message"),
    [
        ({"a": [1]}, "/lines/0/properties/a", "text, a number or a boolean"),
        ({f"k{i}": 1 for i in range(21)}, "/lines/0/properties", "at most 20"),
    ],
)
async def test_line_properties_are_refused_at_their_line(
    tenant: Client, properties: dict[str, Any], pointer: str, message: str
):
    body = sale_body(ref("S"), "wh-1", ("SKU-1", 1))
    body["lines"][0]["properties"] = properties
    problem = assert_problem(await tenant.post("/sales", body), "validation", [pointer], "body")
    assert message in problem["errors"][0]["message"], problem


async def test_all_lines_properties_together_are_bounded(tenant: Client):
    body = sale_body(ref("S"), "wh-1", *[(f"SKU-{i}", 1) for i in range(4)])
    for line in body["lines"]:
        line["properties"] = {f"k{i}": "x" * 500 for i in range(10)}  # ~5 KB a line
    problem = assert_problem(await tenant.post("/sales", body), "validation", ["/lines"], "body")
    assert "at most 16384" in problem["errors"][0]["message"], problem


async def test_a_batch_points_into_the_sale_it_refuses(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    good = sale_body(ref("S"), location, (sku, 1)) | {"priority": "urgent"}
    bad = sale_body(ref("S"), location, (sku, 1)) | {
        "invoice_value": {"amount": "1", "currency": "ABC"}
    }
    answer = await tenant.post("/sales/batch", {"sales": [good, bad]})
    assert answer.status == 200, answer
    assert [s["sale_id"] for s in answer.body["sales"]] == [good["sale_id"]]
    assert answer.body["sales"][0]["priority"] == "urgent"
    [error] = answer.body["errors"]
    assert (error["index"], error["sale_id"], error["code"]) == (1, bad["sale_id"], "validation")
    assert [e["field"] for e in error["errors"]] == ["/sales/1/invoice_value/currency"]


async def test_sales_are_listed_by_priority_and_ship_by_date(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=50)
    channel = ref("ch")  # only this test's sales: the tenant is shared

    async def create(priority: str, ship_by: str | None) -> str:
        sale_id = ref("S")
        body = sale_body(sale_id, location, (sku, 1)) | {"priority": priority}
        body["shop"]["channel"] = channel
        if ship_by:
            body["required_dates"] = {"ship_by": ship_by}
        created = await tenant.post("/sales", body)
        assert created.status == 201, created
        return sale_id

    urgent_soon = await create("urgent", "2026-12-01T00:00:00Z")
    urgent_undated = await create("urgent", None)
    normal_soon = await create("normal", "2026-12-01T10:00:00+02:00")  # 08:00 UTC
    normal_later = await create("normal", "2026-12-10T00:00:00Z")
    normal_undated = await create("normal", None)

    async def listed(**filters: str) -> list[str]:
        answer = await tenant.get("/sales", channel=channel, **filters)
        assert answer.status == 200, answer
        assert answer.body["pagination"]["total_count"] == len(answer.body["data"]), answer
        return [s["sale_id"] for s in answer.body["data"]]

    assert await listed() == [
        urgent_soon,
        urgent_undated,
        normal_soon,
        normal_later,
        normal_undated,
    ]
    assert await listed(priority="urgent") == [urgent_soon, urgent_undated]
    assert await listed(priority="normal") == [normal_soon, normal_later, normal_undated]
    assert await listed(ship_by_before="2026-12-01T08:00:00Z") == [urgent_soon]
    assert await listed(ship_by_before="2026-12-02T00:00:00Z") == [urgent_soon, normal_soon]
    assert await listed(ship_by_after="2026-12-01T08:00:00Z") == [normal_soon, normal_later]
    assert await listed(
        ship_by_after="2026-12-01T00:00:00Z",
        ship_by_before="2026-12-05T00:00:00Z",
        priority="normal",
    ) == [normal_soon]

    for bad, pointer in [
        ({"priority": "high"}, "/priority"),
        ({"ship_by_before": "soon"}, "/ship_by_before"),
        ({"ship_by_after": "0.5"}, "/ship_by_after"),
    ]:
        answer = await tenant.get("/sales", **bad)
        assert_problem(answer, "validation", [pointer], where="query")
