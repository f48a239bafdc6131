"""Editing a sale through the gateway, against real Kafka and PostgreSQL: `If-Match` is
required and checked, each field is validated as at create, only open sales change, and an
edit writes a history entry, a `sale.updated` event and its webhook (docs/api-guide.md,
"Editing a sale")."""

import asyncio
from typing import Any

import orjson
import pytest

from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.test_hostile_input import assert_problem
from tests.e2e.webhook_tools import polled, register, started
from tests.kafka_tools import read_all
from tests.support import Answer, Client, eventually, ref

PROBLEM = "application/problem+json"


async def patch(client: Client, sale_id: str, body: Any, version: Any = None, **headers) -> Answer:
    if version is not None:
        headers["If-Match"] = f'"{version}"' if isinstance(version, int) else version
    return await client.call("PATCH", f"/sales/{sale_id}", json=body, headers=headers)


async def pending_sale(tenant: Client, quantity: int = 2, stock: int = 10) -> tuple[str, str, dict]:
    sku, location, _ = await stocked_product(tenant, quantity=stock)
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, quantity)))
    assert created.status == 201 and created.body["status"] == "pending", created
    return sku, location, created.body


def assert_conflict(answer: Answer, status: str, version: int) -> None:
    assert answer.status == 409, answer
    assert answer.headers["Content-Type"].startswith(PROBLEM)
    body = answer.body
    assert body["type"] == "urn:fulfil:problem:conflict" and body["code"] == "conflict", body
    assert (body["title"], body["status"]) == ("Conflict", 409)
    assert (body["sale_status"], body["version"]) == (status, version), body
    assert isinstance(body["detail"], str) and body["detail"]


async def test_an_edit_of_details_keeps_status_and_reservation(tenant: Client):
    hook = await started()
    try:
        await register(tenant, hook.url, event_types=["sale.updated"])
        sku, location, sale = await pending_sale(tenant)
        sale_id = sale["sale_id"]
        read = await tenant.get(f"/sales/{sale_id}")
        assert read.headers["ETag"] == '"2"'  # created, then pending
        edit = {
            "priority": "urgent",
            "instructions": "Leave with the neighbour.",
            "shipping_address": {"name": "Ada", "lines": ["1 Main St"], "city": "Bergen",
                                 "country": "NO"},
            "customer": {"name": "Ada L."},
            "required_dates": {"ship_by": "2030-01-02T10:00:00+01:00"},
            "invoice_value": {"amount": "12.50", "currency": "NOK"},
            "cash_on_delivery": None,
            "properties": {"gift": True},
        }  # fmt: skip
        answer = await patch(tenant, sale_id, edit, 2)
        assert answer.status == 200, answer
        assert answer.headers["ETag"] == '"3"'
        edited = answer.body
        assert (edited["status"], edited["version"]) == ("pending", 3)
        assert edited["priority"] == "urgent"
        assert edited["instructions"] == "Leave with the neighbour."
        assert edited["shipping_address"] == edit["shipping_address"]
        assert edited["customer"] == {"name": "Ada L."}
        assert edited["required_dates"] == {"ship_by": "2030-01-02T09:00:00Z", "deliver_by": None}
        assert edited["invoice_value"] == {"amount": "12.50", "currency": "NOK"}
        assert edited["cash_on_delivery"] is None
        assert edited["properties"] == {"gift": True}
        # what to reserve did not change: the same lines, the same reservation
        assert edited["lines"] == sale["lines"] and edited["location_id"] == location
        assert edited["reservation"] == sale["reservation"]
        assert edited["issues"] == []
        last = edited["status_history"][-1]
        assert (last["from_status"], last["to_status"], last["reason"]) == (
            "pending",
            "pending",
            "edited",
        )
        assert last["actor"] == edited["status_history"][0]["actor"], last  # the API key
        assert len(edited["status_history"]) == 3
        assert (await tenant.get(f"/sales/{sale_id}")).body == edited
        records = await tenant.get("/stock/stock-records", sku=sku)
        assert (records.body["data"][0]["reserved"], records.body["data"][0]["available"]) == (2, 8)

        [arrival] = await eventually(
            polled(lambda: [a for a in hook.received if a.json["data"]["sale_id"] == sale_id]),
            lambda found: len(found) == 1,
            what="the sale.updated delivery",
        )
        assert arrival.type == "sale.updated"
        data = arrival.json["data"]
        assert (data["status"], data["previous_status"], data["version"]) == (
            "pending",
            "pending",
            3,
        )
        assert data["changed"] == [  # in the order of the fields, those that changed
            "customer",
            "shipping_address",
            "priority",
            "instructions",
            "required_dates",
            "invoice_value",
            "properties",
        ]
        assert data["priority"] == "urgent" and data["location_id"] == location
    finally:
        await hook.stop()


async def test_sale_updated_is_on_kafka_with_the_full_sale(tenant: Client, infrastructure):
    _, location, sale = await pending_sale(tenant)
    sale_id = sale["sale_id"]
    answer = await patch(tenant, sale_id, {"instructions": "Fragile"}, "*")
    assert answer.status == 200 and answer.body["version"] == 3, answer

    async def published() -> list[dict]:
        records = await read_all(infrastructure.bootstrap_servers, c.SALES_TOPIC)
        events = [orjson.loads(r.value) for r in records if sale_id.encode() in (r.value or b"")]
        return [e for e in events if e["type"] == c.SALE_UPDATED]

    [event] = await eventually(published, lambda found: len(found) == 1, what="sale.updated")
    assert event["source"] == "/orders" and event["tenantid"] == tenant.tenant_id
    assert event["subject"] == f"sale/{sale['id']}"
    data = c.SaleUpdated.model_validate(event["data"])
    assert (data.sale_id, data.version, data.status, data.previous_status) == (
        sale_id,
        3,
        "pending",
        "pending",
    )
    assert data.changed == ["instructions"] and data.instructions == "Fragile"
    assert data.location_id == location and [ln.sku for ln in data.lines] == [
        ln["sku"] for ln in sale["lines"]
    ]


async def test_if_match_is_required_and_must_be_current(tenant: Client):
    _, _, sale = await pending_sale(tenant)
    sale_id = sale["sale_id"]

    missing = await patch(tenant, sale_id, {"priority": "urgent"})
    assert missing.status == 428, missing
    assert missing.headers["Content-Type"].startswith(PROBLEM)
    assert missing.body["type"] == "urn:fulfil:problem:precondition_required"
    assert (missing.body["code"], missing.body["status"]) == ("precondition_required", 428)
    assert missing.body["title"] == "Precondition required" and missing.body["detail"]

    stale = await patch(tenant, sale_id, {"priority": "urgent"}, 1)
    assert_conflict(stale, "pending", 2)

    malformed = await patch(tenant, sale_id, {"priority": "urgent"}, "three")
    assert malformed.status == 400 and malformed.body["code"] == "invalid_request", malformed

    unchanged = await tenant.get(f"/sales/{sale_id}")
    assert (unchanged.body["version"], unchanged.body["priority"]) == (2, "normal")
    assert len(unchanged.body["status_history"]) == 2

    same = await patch(tenant, sale_id, {"priority": "normal"}, 2)  # what it is already
    assert same.status == 200 and same.body["version"] == 2, same
    assert len(same.body["status_history"]) == 2


async def test_an_unknown_sale_is_404(tenant: Client, other_tenant: Client):
    _, _, sale = await pending_sale(tenant)
    for client, sale_id in ((tenant, ref("nope")), (other_tenant, sale["sale_id"])):
        answer = await patch(client, sale_id, {"priority": "urgent"}, 2)
        assert answer.status == 404 and answer.body["code"] == "no_content", answer


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"lines": []}, ["/lines"]),
        ({"lines": None}, ["/lines"]),
        ({"lines": [{"sku": "A", "quantity": 0}]}, ["/lines/0/quantity"]),
        ({"lines": [{"sku": "A", "quantity": "2"}]}, ["/lines/0/quantity"]),
        ({"allow_split": None}, ["/allow_split"]),
        ({"allow_split": "no"}, ["/allow_split"]),
        ({"location_id": "no spaces"}, ["/location_id"]),
        ({"priority": "soon"}, ["/priority"]),
        ({"priority": None}, ["/priority"]),
        ({"invoice_value": {"amount": "1.5", "currency": "EURO"}}, ["/invoice_value/currency"]),
        ({"required_dates": {"ship_by": "tomorrow"}}, ["/required_dates/ship_by"]),
        ({"shipping_address": {"country": "XX"}}, ["/shipping_address/country"]),
        ({"properties": {"a": {"nested": 1}}}, ["/properties/a"]),
        ({"status": "shipped"}, ["/status"]),
        ({"sale_id": "S-2"}, ["/sale_id"]),
    ],
)
async def test_each_field_is_validated_as_at_create(tenant: Client, body, fields):
    _, _, sale = await pending_sale(tenant)
    answer = await patch(tenant, sale["sale_id"], body, 2)
    problem = assert_problem(answer, "validation")
    assert [e["field"] for e in problem["errors"]][: len(fields)] == fields, problem
    assert (await tenant.get(f"/sales/{sale['sale_id']}")).body["version"] == 2


async def test_lines_naming_skus_outside_the_catalogue_are_refused(tenant: Client):
    sku, _, sale = await pending_sale(tenant)
    lines = [{"sku": sku, "quantity": 1}, {"sku": ref("NOPE"), "quantity": 1}]
    answer = await patch(tenant, sale["sale_id"], {"lines": lines}, 2)
    problem = assert_problem(answer, "validation", ["/lines/1/sku"], where="body")
    assert lines[1]["sku"] in problem["errors"][0]["message"]
    read = await tenant.get(f"/sales/{sale['sale_id']}")
    assert (read.body["version"], read.body["lines"]) == (2, sale["lines"])


async def test_a_sale_in_fulfillment_or_canceled_cannot_be_edited(tenant: Client):
    _, _, shipping = await pending_sale(tenant)
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [shipping["sale_id"]]})
    assert init.status == 200 and not init.body["errors"], init
    answer = await patch(tenant, shipping["sale_id"], {"priority": "urgent"}, 3)
    assert_conflict(answer, "in_fulfillment", 3)
    assert "in_fulfillment" in answer.body["detail"]

    _, _, canceled = await pending_sale(tenant)
    cancel = await tenant.post(
        "/sales/cancel", {"sale_id": canceled["sale_id"], "cancel_reason": "other"}
    )
    assert cancel.status == 200, cancel
    answer = await patch(tenant, canceled["sale_id"], {"lines": canceled["lines"]}, "*")
    assert_conflict(answer, "canceled", 3)
    read = await tenant.get(f"/sales/{canceled['sale_id']}")
    assert (read.body["status"], read.body["version"]) == ("canceled", 3)


async def test_concurrent_edits_of_one_version_apply_once(tenant: Client):
    _, _, sale = await pending_sale(tenant)
    sale_id = sale["sale_id"]
    answers = await asyncio.gather(
        *(patch(tenant, sale_id, {"instructions": f"note {i}"}, 2) for i in range(8))
    )
    assert sorted(a.status for a in answers) == [200] + [409] * 7, answers
    [won] = [a for a in answers if a.status == 200]
    for lost in (a for a in answers if a.status == 409):
        assert (lost.body["sale_status"], lost.body["version"]) == ("pending", 3), lost
    read = (await tenant.get(f"/sales/{sale_id}")).body
    assert (read["version"], read["instructions"]) == (3, won.body["instructions"])
    assert [h["reason"] for h in read["status_history"]].count("edited") == 1
