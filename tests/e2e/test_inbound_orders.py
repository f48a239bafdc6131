"""Inbound orders through the gateway: create, read, list, change, cancel, receive and close;
what each answers field by field, the 409/422 problems, on-hand and the ledger after each
receipt, `incoming` on stock records, the events on the real broker and a webhook."""

import uuid
from typing import Any

from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body
from tests.e2e.webhook_tools import received_count, register, started
from tests.kafka_tools import as_event, read_all
from tests.support import Client, eventually, ref

PATH = "/inbound-orders"


async def new_location(client: Client, **fields: Any) -> str:
    location = ref("wh")
    answer = await client.post("/locations", {"location_id": location, "name": "Dock", **fields})
    assert answer.status == 201, answer
    return location


async def new_product(client: Client) -> str:
    sku = ref("SKU")
    answer = await client.post("/products", {"sku": sku, "name": "Mug"})
    assert answer.status == 201, answer
    return sku


async def create(client: Client, location: str | None, *lines: tuple[str, int], **fields: Any):
    body = {"reference": ref("PO"), "lines": [{"sku": s, "quantity": q} for s, q in lines]}
    if location is not None:
        body["location_id"] = location
    return await client.post(PATH, body | fields)


async def receive(client: Client, order_id: str, *lines: dict, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else None
    return await client.post(f"{PATH}/{order_id}/receipts", {"lines": list(lines)}, headers=headers)


async def record_of(client: Client, location: str, sku: str) -> dict | None:
    answer = await client.get("/stock/stock-records", sku=sku, location_id=location)
    assert answer.status == 200, answer
    return answer.body["data"][0] if answer.body["data"] else None


async def integrity_clean(client: Client) -> None:
    report = await client.get("/stock/integrity")
    assert report.status == 200, report
    assert report.body["discrepancies"] == [], report.body


def pointers(answer) -> list[str]:
    return [e["field"] for e in answer.body["errors"]]


# Create and read


async def test_create_answers_the_order_field_by_field(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    other = await new_product(tenant)
    reference = ref("PO")
    answer = await tenant.post(
        PATH,
        {
            "reference": reference,
            "supplier": "Acme Ceramics",
            "location_id": location,
            "expected_at": "2030-01-15T09:00:00Z",
            "urgent": True,
            "instructions": "Dock 3, call ahead",
            "properties": {"container": "MSKU123", "pallets": 4, "fragile": True},
            "lines": [{"sku": sku, "quantity": 10}, {"sku": other, "quantity": 2}],
        },
    )
    assert answer.status == 201, answer
    body = answer.body
    assert set(body) == {
        "id",
        "reference",
        "supplier",
        "location_id",
        "expected_at",
        "urgent",
        "instructions",
        "properties",
        "status",
        "close_reason",
        "lines",
        "version",
        "created_at",
        "updated_at",
    }
    assert body["reference"] == reference
    assert body["supplier"] == "Acme Ceramics"
    assert body["location_id"] == location
    assert body["expected_at"] == "2030-01-15T09:00:00Z"
    assert body["urgent"] is True
    assert body["instructions"] == "Dock 3, call ahead"
    assert body["properties"] == {"container": "MSKU123", "pallets": 4, "fragile": True}
    assert body["status"] == "open", "open unless asked for a draft"
    assert body["close_reason"] is None
    assert body["lines"] == [
        {"sku": sku, "quantity": 10, "received": 0},
        {"sku": other, "quantity": 2, "received": 0},
    ]
    assert body["version"] == 1 and answer.headers["ETag"] == '"1"'

    got = await tenant.get(f"{PATH}/{body['id']}")
    assert (got.status, got.body, got.headers["ETag"]) == (200, body, '"1"')


async def test_the_default_location_is_taken_when_none_is_named(tenant: Client):
    sku = await new_product(tenant)
    none = await create(tenant, None, (sku, 1))
    assert (none.status, none.problem_code) == (422, "validation"), none
    assert pointers(none) == ["/location_id"]
    default = await new_location(tenant, is_default=True)
    answer = await create(tenant, None, (sku, 1), status="draft")
    assert answer.status == 201, answer
    assert (answer.body["location_id"], answer.body["status"]) == (default, "draft")


async def test_refusals_name_the_field(tenant: Client, other_tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    unknown_sku = ref("NOPE")
    unknown = await create(tenant, location, (sku, 1), (unknown_sku, 2), (sku, 3))
    assert (unknown.status, unknown.problem_code) == (422, "validation"), unknown
    assert pointers(unknown) == ["/lines/1/sku", "/lines/2/sku"]
    nowhere = await create(tenant, "no-such-place", (sku, 1))
    assert (nowhere.status, pointers(nowhere)) == (422, ["/location_id"])
    zero = await create(tenant, location, (sku, 0))
    assert (zero.status, pointers(zero)) == (422, ["/lines/0/quantity"])
    received = await create(tenant, location, (sku, 1), status="received")
    assert (received.status, pointers(received)) == (422, ["/status"])
    empty = await create(tenant, location)
    assert (empty.status, pointers(empty)) == (422, ["/lines"])

    first = await create(tenant, location, (sku, 1), reference="PO-SAME")
    assert first.status == 201, first
    again = await create(tenant, location, (sku, 1), reference="PO-SAME")
    assert again.status == 409, again
    assert again.headers["Content-Type"].startswith("application/problem+json")
    assert again.body == {
        "type": "urn:fulfil:problem:duplicated",
        "title": again.body["title"],
        "status": 409,
        "detail": "An inbound order with reference 'PO-SAME' already exists.",
        "code": "duplicated",
    }
    assert unknown.body["errors"] == [
        {"field": "/lines/1/sku", "message": f"no product {unknown_sku}"},
        {"field": "/lines/2/sku", "message": "listed twice"},
    ]

    hidden = await other_tenant.get(f"{PATH}/{first.body['id']}")
    assert (hidden.status, hidden.problem_code) == (404, "no_content"), hidden


async def test_lists_filter_and_page(tenant: Client):
    here, there = await new_location(tenant), await new_location(tenant)
    mug, cup = await new_product(tenant), await new_product(tenant)
    early = await create(tenant, here, (mug, 1), expected_at="2030-01-01T00:00:00Z")
    late = await create(tenant, here, (cup, 1), expected_at="2030-02-01T00:00:00Z")
    draft = await create(tenant, there, (mug, 1), status="draft")
    ids = [a.body["id"] for a in (early, late, draft)]

    async def listed(**params: Any) -> list[str]:
        answer = await tenant.get(PATH, **params)
        assert answer.status == 200, answer
        return [o["id"] for o in answer.body["data"]]

    assert await listed() == ids
    assert await listed(status="draft") == [ids[2]]
    assert await listed(status="open") == ids[:2]
    assert await listed(location_id=here) == ids[:2]
    assert await listed(sku=mug) == [ids[0], ids[2]]
    assert await listed(expected_from="2030-01-15T00:00:00Z") == [ids[1]]
    assert await listed(expected_to="2030-01-15T00:00:00Z") == [ids[0]]
    page = await tenant.get(PATH, pageNumber=2, pageSize=1)
    assert [o["id"] for o in page.body["data"]] == [ids[1]]
    assert page.body["pagination"] == {"total_count": 3, "offset": 1, "limit": 1}
    assert page.headers["Total-Count"] == "3"
    bad = await tenant.get(PATH, status="lost")
    assert bad.status == 422, bad


# Change and cancel


async def test_patch_with_if_match_while_draft_or_open(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    other = await new_product(tenant)
    order = (await create(tenant, location, (sku, 5), status="draft")).body
    path = f"{PATH}/{order['id']}"
    stale = await tenant.call("PATCH", path, json={"urgent": True}, headers={"If-Match": '"9"'})
    assert (stale.status, stale.problem_code) == (409, "conflict"), stale
    changed = await tenant.call(
        "PATCH",
        path,
        json={"status": "open", "lines": [{"sku": other, "quantity": 3}], "supplier": "Bo"},
        headers={"If-Match": '"1"'},
    )
    assert changed.status == 200, changed
    assert changed.body["status"] == "open" and changed.body["supplier"] == "Bo"
    assert changed.body["lines"] == [{"sku": other, "quantity": 3, "received": 0}]
    assert (changed.body["version"], changed.headers["ETag"]) == (2, '"2"')
    assert changed.body["reference"] == order["reference"], "the rest is left alone"
    refused = await tenant.call("PATCH", path, json={"status": "received"})
    assert (refused.status, pointers(refused)) == (422, ["/status"])

    partial = await receive(tenant, order["id"], {"sku": other, "quantity": 1, "reason": "short"})
    assert partial.status == 201, partial
    late = await tenant.call("PATCH", path, json={"urgent": True})
    assert (late.status, late.problem_code) == (409, "conflict"), late
    canceled = await tenant.post(f"{path}/cancel")
    assert (canceled.status, canceled.problem_code) == (409, "conflict"), canceled


async def test_cancel_while_nothing_is_received(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    order = (await create(tenant, location, (sku, 5))).body
    canceled = await tenant.post(f"{PATH}/{order['id']}/cancel")
    assert canceled.status == 200, canceled
    assert (canceled.body["status"], canceled.body["version"]) == ("canceled", 2)
    again = await tenant.post(f"{PATH}/{order['id']}/cancel")
    assert (again.status, again.problem_code) == (409, "conflict")
    refused = await receive(tenant, order["id"], {"sku": sku, "quantity": 5})
    assert (refused.status, refused.problem_code) == (409, "conflict"), refused


# Receipts


async def test_receipts_raise_on_hand_with_ledger_rows_and_move_the_status(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    other = await new_product(tenant)
    order = (await create(tenant, location, (sku, 10), (other, 4))).body
    assert (await record_of(tenant, location, sku)) is None

    unexplained = await receive(tenant, order["id"], {"sku": sku, "quantity": 6})
    assert (unexplained.status, unexplained.problem_code) == (422, "validation"), unexplained
    assert unexplained.body["errors"] == [
        {"field": "/lines/0/reason", "message": "6 is less than the 10 still expected: say why"}
    ]
    stranger = await receive(tenant, order["id"], {"sku": ref("X"), "quantity": 1, "reason": "?"})
    assert (stranger.status, pointers(stranger)) == (422, ["/lines/0/sku"])

    first = await receive(
        tenant, order["id"], {"sku": sku, "quantity": 6, "reason": "rest next week"}, key=ref("k")
    )
    assert first.status == 201, first
    assert set(first.body) == {"receipt_id", "inbound_order"}
    after = first.body["inbound_order"]
    assert after["status"] == "receiving" and after["version"] == 2
    assert after["lines"] == [
        {"sku": sku, "quantity": 10, "received": 6},
        {"sku": other, "quantity": 4, "received": 0},
    ]
    record = await record_of(tenant, location, sku)
    assert (record["quantity"], record["reserved"], record["incoming"]) == (6, 0, 4)
    ledger = await tenant.get("/stock/movements", reference=first.body["receipt_id"])
    assert [(m["sku"], m["reason"], m["quantity_change"]) for m in ledger.body["data"]] == [
        (sku, "receipt", 6)
    ]

    last = await receive(
        tenant,
        order["id"],
        {"sku": sku, "quantity": 4},
        {"sku": other, "quantity": 5, "reason": "one spare"},
    )
    assert last.status == 201, last
    done = last.body["inbound_order"]
    assert (done["status"], done["version"]) == ("received", 3)
    assert [line["received"] for line in done["lines"]] == [10, 5]
    assert (await record_of(tenant, location, sku))["quantity"] == 10
    spare = await record_of(tenant, location, other)
    assert (spare["quantity"], spare["incoming"]) == (5, 0)
    more = await receive(tenant, order["id"], {"sku": sku, "quantity": 1, "reason": "late"})
    assert (more.status, more.problem_code) == (409, "conflict"), more
    await integrity_clean(tenant)

    listed = await tenant.get(f"{PATH}/{order['id']}/receipts")
    assert listed.status == 200, listed
    assert listed.body["pagination"] == {"total_count": 2, "offset": 0, "limit": 100}
    shown = listed.body["data"]
    assert [r["id"] for r in shown] == [first.body["receipt_id"], last.body["receipt_id"]]
    assert set(shown[0]) == {"id", "lines", "actor", "created_at"}
    assert shown[0]["lines"] == [{"sku": sku, "quantity": 6, "reason": "rest next week"}]
    assert shown[1]["lines"] == [
        {"sku": sku, "quantity": 4, "reason": None},
        {"sku": other, "quantity": 5, "reason": "one spare"},
    ]
    nowhere = await tenant.get(f"{PATH}/{uuid.uuid4()}/receipts")
    assert (nowhere.status, nowhere.problem_code) == (404, "no_content"), nowhere


async def test_a_receipt_is_applied_once_per_idempotency_key(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    order = (await create(tenant, location, (sku, 10))).body
    key = ref("key")
    line = {"sku": sku, "quantity": 3, "reason": "partial"}
    first = await receive(tenant, order["id"], line, key=key)
    replay = await receive(tenant, order["id"], line, key=key)
    assert (first.status, replay.status) == (201, 201)
    assert replay.body == first.body and replay.headers.get("Idempotent-Replayed") == "true"
    other = await receive(tenant, order["id"], {**line, "quantity": 4}, key=key)
    assert (other.status, other.problem_code) == (409, "conflict"), other
    assert (await record_of(tenant, location, sku))["quantity"] == 3
    got = await tenant.get(f"{PATH}/{order['id']}")
    assert got.body["lines"][0]["received"] == 3


async def test_close_by_hand_with_a_reason(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    order = (await create(tenant, location, (sku, 10))).body
    await receive(tenant, order["id"], {"sku": sku, "quantity": 2, "reason": "short"})
    record = await record_of(tenant, location, sku)
    assert record["incoming"] == 8
    missing = await tenant.post(f"{PATH}/{order['id']}/close", {})
    assert (missing.status, pointers(missing)) == (422, ["/reason"])
    closed = await tenant.post(f"{PATH}/{order['id']}/close", {"reason": "supplier out"})
    assert closed.status == 200, closed
    assert (closed.body["status"], closed.body["close_reason"]) == ("closed", "supplier out")
    assert (await record_of(tenant, location, sku))["incoming"] == 0, "nothing more will come"
    again = await tenant.post(f"{PATH}/{order['id']}/close", {"reason": "twice"})
    assert (again.status, again.problem_code) == (409, "conflict")


async def test_incoming_counts_open_orders_only(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    made = await tenant.post(
        "/stock/stock-records", {"sku": sku, "location_id": location, "quantity": 1}
    )
    assert made.body["incoming"] == 0
    await create(tenant, location, (sku, 7))
    await create(tenant, location, (sku, 3))
    await create(tenant, location, (sku, 100), status="draft")
    got = await tenant.get(f"/stock/stock-records/{made.body['id']}")
    assert (got.body["quantity"], got.body["incoming"]) == (1, 10)


# A receipt fills a backordered sale


async def test_a_receipt_fills_a_backordered_sale(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    sale_id = ref("S")
    sale = await tenant.post("/sales", sale_body(sale_id, location, (sku, 3)))
    assert (sale.status, sale.body["status"]) == (228, "backordered"), sale
    order = (await create(tenant, location, (sku, 5), expected_at="2030-03-01T00:00:00Z")).body
    received = await receive(tenant, order["id"], {"sku": sku, "quantity": 5})
    assert received.status == 201, received

    async def status() -> str:
        return (await tenant.get(f"/sales/{sale_id}")).body["status"]

    await eventually(status, lambda s: s == "pending", what="the sale reserved")
    record = await record_of(tenant, location, sku)
    assert (record["quantity"], record["reserved"]) == (5, 3)
    await integrity_clean(tenant)


# Events and webhooks


async def test_every_change_is_an_event_keyed_by_the_order(tenant: Client, infrastructure):
    location, sku = await new_location(tenant), await new_product(tenant)
    order = (await create(tenant, location, (sku, 4))).body
    first = await receive(tenant, order["id"], {"sku": sku, "quantity": 1, "reason": "short"})
    await receive(tenant, order["id"], {"sku": sku, "quantity": 3})
    key = f"{tenant.tenant_id}:inbound_order:{order['id']}"

    async def events() -> list[dict]:
        found = []
        for message in await read_all(infrastructure.bootstrap_servers, c.STOCK_TOPIC):
            if message.key and message.key.decode() == key:
                found.append(as_event(message))
        return found

    seen = await eventually(events, lambda e: len(e) >= 5, what="five events")
    assert [(e["type"], e["data"]["version"]) for e in seen] == [
        ("inbound_order.created", 1),
        ("inbound_order.received", 2),
        ("inbound_order.status_changed", 2),
        ("inbound_order.received", 3),
        ("inbound_order.status_changed", 3),
    ]
    assert seen[0]["subject"] == f"inbound-order/{order['id']}"
    assert seen[0]["data"]["lines"] == [{"sku": sku, "quantity": 4, "received": 0}]
    changed = seen[2]["data"]
    assert (changed["previous_status"], changed["status"]) == ("open", "receiving")
    receipt = seen[1]["data"]["receipt"]
    assert receipt["id"] == first.body["receipt_id"]
    assert receipt["lines"] == [{"sku": sku, "quantity": 1, "reason": "short"}]
    assert (seen[4]["data"]["previous_status"], seen[4]["data"]["status"]) == (
        "receiving",
        "received",
    )


async def test_a_webhook_delivers_the_received_order(tenant: Client):
    hook = await started()
    try:
        await register(tenant, hook.url, event_types=["inbound_order.*"])
        location, sku = await new_location(tenant), await new_product(tenant)
        order = (await create(tenant, location, (sku, 2))).body
        await receive(tenant, order["id"], {"sku": sku, "quantity": 2})
        await received_count(hook, 3)
        types = sorted(a.type for a in hook.received)
        assert types[:3] == [
            "inbound_order.created",
            "inbound_order.received",
            "inbound_order.status_changed",
        ]
        [arrival] = hook.of_type("inbound_order.received")
        data = arrival.json["data"]
        assert (data["id"], data["status"], data["version"]) == (order["id"], "received", 2)
        assert data["lines"] == [{"sku": sku, "quantity": 2, "received": 2}]
    finally:
        await hook.stop()


# A backordered line's expected arrival


async def test_a_short_line_shows_when_an_inbound_order_would_fill_it(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    sale_id = ref("S")
    sale = await tenant.post("/sales", sale_body(sale_id, location, (sku, 4)))
    assert (sale.status, sale.body["status"]) == (228, "backordered"), sale
    assert "expected_at" not in sale.body["issues"][0]

    async def issues() -> list[dict]:
        return (await tenant.get(f"/sales/{sale_id}")).body["issues"]

    small = await create(tenant, location, (sku, 3), expected_at="2030-01-01T00:00:00Z")
    big = await create(tenant, location, (sku, 4), expected_at="2030-02-01T00:00:00Z")
    assert (small.status, big.status) == (201, 201)
    shown = await eventually(
        issues, lambda i: i[0].get("expected_at") is not None, what="an expected arrival"
    )
    assert shown == [
        {
            "sku": sku,
            "requested": 4,
            "available": 0,
            "reason": "insufficient_stock",
            "expected_at": "2030-02-01T00:00:00Z",
        }
    ], "the first order that would fill the line, not the first order"

    sooner = await tenant.call(
        "PATCH", f"{PATH}/{small.body['id']}", json={"lines": [{"sku": sku, "quantity": 4}]}
    )
    assert sooner.status == 200, sooner
    await eventually(
        issues,
        lambda i: i[0].get("expected_at") == "2030-01-01T00:00:00Z",
        what="the sooner arrival",
    )
    for order in (small, big):
        canceled = await tenant.post(f"{PATH}/{order.body['id']}/cancel")
        assert canceled.status == 200, canceled
    await eventually(issues, lambda i: "expected_at" not in i[0], what="no arrival")
    assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "backordered"


async def test_a_webhook_filter_on_the_status_an_order_moved_to(tenant: Client):
    hook = await started()
    try:
        endpoint = await register(
            tenant,
            hook.url,
            event_types=["inbound_order.status_changed"],
            filters={"inbound_order.status_changed": {"status": ["received"]}},
        )
        assert endpoint["filters"] == {"inbound_order.status_changed": {"status": ["received"]}}
        location, sku = await new_location(tenant), await new_product(tenant)
        order = (await create(tenant, location, (sku, 3))).body
        await receive(tenant, order["id"], {"sku": sku, "quantity": 1, "reason": "short"})
        await receive(tenant, order["id"], {"sku": sku, "quantity": 2})
        await received_count(hook, 1)
        [arrival] = hook.received
        data = arrival.json["data"]
        assert (arrival.type, data["previous_status"], data["status"]) == (
            "inbound_order.status_changed",
            "receiving",
            "received",
        )
    finally:
        await hook.stop()
