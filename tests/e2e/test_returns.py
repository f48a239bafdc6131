"""Returns of shipped sales, as a client sees them: the limits per SKU, the state machine,
the stock they bring back (and the discards they record), their events and webhooks."""

import uuid
from datetime import datetime
from typing import Any

from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body, stocked_product
from tests.e2e.webhook_tools import polled, register, started
from tests.kafka_tools import as_event, read_all
from tests.support import Client, eventually, ref


async def shipped_sale(client: Client, quantity: int = 3, stock: int = 10) -> dict[str, Any]:
    """A sale of `quantity` units of a new product stocked with `stock`, shipped."""
    sku, location, record = await stocked_product(client, quantity=stock)
    sale_id = ref("S")
    created = await client.post("/sales", sale_body(sale_id, location, (sku, quantity)))
    assert created.body["status"] == "pending", created
    await ship(client, sale_id)
    return {
        "sale_id": sale_id,
        "sale": created.body,
        "sku": sku,
        "location": location,
        "record": record,
    }


async def ship(client: Client, sale_id: str) -> None:
    init = await client.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    assert init.status == 200 and not init.body["errors"], init
    [fulfillment] = init.body["fulfillments"]
    path = f"/fulfillment/fulfillments/{fulfillment['id']}/status"
    moved = await client.post(path, {"status": "shipped"})
    assert moved.status == 200, moved
    await eventually(
        lambda: client.get(f"/sales/{sale_id}"),
        lambda a: a.body["status"] == "shipped",
        what="the sale shipped",
    )


async def on_hand(client: Client, record: dict) -> int:
    return (await client.get(f"/stock/stock-records/{record['id']}")).body["quantity"]


async def ledger(client: Client, reference: str) -> list[dict]:
    answer = await client.get("/stock/movements", reference=reference)
    assert answer.status == 200, answer
    return answer.body["data"]


def restock(sku: str, quantity: int, location: str, disposition: str = "restock") -> dict:
    return {"sku": sku, "quantity": quantity, "disposition": disposition, "location_id": location}


async def test_a_return_of_a_shipped_sale_is_created_read_listed_and_shown_on_the_sale(
    tenant: Client,
):
    sold = await shipped_sale(tenant)
    body = {
        "sale_id": sold["sale_id"],
        "reason": "damaged",
        "lines": [{"sku": sold["sku"], "quantity": 2}],
    }
    created = await tenant.post("/returns", body)
    assert created.status == 201, created
    ret = created.body
    assert set(ret) == {
        "id",
        "sale_id",
        "status",
        "version",
        "reason",
        "lines",
        "received_lines",
        "created_at",
        "updated_at",
        "received_at",
        "closed_at",
        "canceled_at",
    }
    uuid.UUID(ret["id"])
    assert ret["sale_id"] == sold["sale_id"]
    assert (ret["status"], ret["version"], ret["reason"]) == ("requested", 1, "damaged")
    assert ret["lines"] == [{"sku": sold["sku"], "quantity": 2}]
    assert ret["received_lines"] == []
    assert ret["received_at"] is None and ret["closed_at"] is None
    assert ret["created_at"] == ret["updated_at"]
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/api/v1/returns/{ret['id']}"

    got = await tenant.get(f"/returns/{ret['id']}")
    assert (got.status, got.body, got.headers["ETag"]) == (200, ret, '"1"')

    sale = (await tenant.get(f"/sales/{sold['sale_id']}")).body
    assert sale["returns"] == [
        {"id": ret["id"], "status": "requested", "reason": "damaged", "lines": ret["lines"]}
    ]
    listed_sales = await tenant.get("/sales", status="shipped")
    [shown] = [s for s in listed_sales.body["data"] if s["sale_id"] == sold["sale_id"]]
    assert shown["returns"] == sale["returns"]

    other = await shipped_sale(tenant)
    second = await tenant.post(
        "/returns",
        {
            "sale_id": other["sale_id"],
            "reason": "other",
            "lines": [{"sku": other["sku"], "quantity": 1}],
        },
    )
    assert second.status == 201, second
    everything = await tenant.get("/returns")
    assert everything.status == 200
    assert [r["id"] for r in everything.body["data"]] == [ret["id"], second.body["id"]]
    assert everything.headers["Total-Count"] == "2"
    by_sale = await tenant.get("/returns", sale_id=other["sale_id"])
    assert [r["id"] for r in by_sale.body["data"]] == [second.body["id"]]
    assert (await tenant.get("/returns", status="received")).body["data"] == []
    paged = await tenant.get("/returns", limit=1, offset=1)
    assert [r["id"] for r in paged.body["data"]] == [second.body["id"]]
    bad = await tenant.get("/returns", status="lost")
    assert (bad.status, bad.problem_code) == (422, "validation"), bad


async def test_returns_are_refused_beyond_what_shipped_and_for_sales_not_shipped(tenant: Client):
    sold = await shipped_sale(tenant, quantity=3)
    sku = sold["sku"]

    def asking(*quantities: int) -> dict:
        return {
            "sale_id": sold["sale_id"],
            "reason": "no_longer_needed",
            "lines": [{"sku": sku, "quantity": q} for q in quantities],
        }

    assert (await tenant.post("/returns", asking(2))).status == 201
    beyond = await tenant.post("/returns", asking(1, 1))
    assert (beyond.status, beyond.problem_code) == (409, "conflict"), beyond
    assert beyond.headers["Content-Type"].startswith("application/problem+json")
    assert beyond.body["errors"] == [
        {"field": "/lines/0/quantity", "message": f"2 of {sku!r} asked, 1 may still be returned"}
    ]
    assert beyond.body["remaining"] == {sku: 1}
    other_sku = await tenant.post(
        "/returns",
        {
            "sale_id": sold["sale_id"],
            "reason": "wrong_item",
            "lines": [{"sku": ref("SKU"), "quantity": 1}],
        },
    )
    assert (other_sku.status, other_sku.problem_code) == (409, "conflict"), other_sku
    last = await tenant.post("/returns", asking(1))
    assert last.status == 201, last
    assert (await tenant.post("/returns", asking(1))).status == 409
    canceled = await tenant.post(f"/returns/{last.body['id']}/cancel")
    assert canceled.status == 200, canceled
    assert (canceled.body["status"], canceled.body["version"]) == ("canceled", 2)
    assert canceled.body["canceled_at"] is not None
    assert (await tenant.post(f"/returns/{last.body['id']}/cancel")).body["version"] == 2
    assert (await tenant.post("/returns", asking(1))).status == 201, "a canceled one frees"

    pending_sku, location, _ = await stocked_product(tenant, quantity=5)
    pending = ref("S")
    created = await tenant.post("/sales", sale_body(pending, location, (pending_sku, 1)))
    assert created.body["status"] == "pending", created
    not_shipped = await tenant.post(
        "/returns",
        {"sale_id": pending, "reason": "other", "lines": [{"sku": pending_sku, "quantity": 1}]},
    )
    assert (not_shipped.status, not_shipped.problem_code) == (409, "conflict"), not_shipped
    assert not_shipped.body["sale_status"] == "pending"

    unknown = await tenant.post(
        "/returns", {"sale_id": ref("S"), "reason": "other", "lines": [{"sku": sku, "quantity": 1}]}
    )
    assert unknown.status == 404, unknown
    invalid = await tenant.post(
        "/returns", {"sale_id": sold["sale_id"], "reason": "broken", "lines": []}
    )
    assert (invalid.status, invalid.problem_code) == (422, "validation"), invalid
    assert {e["field"] for e in invalid.body["errors"]} == {"/reason", "/lines"}
    listed = await tenant.get("/returns", sale_id=sold["sale_id"])
    assert len(listed.body["data"]) == 3, "a refused return makes nothing"


async def test_an_idempotency_key_makes_one_return(tenant: Client):
    sold = await shipped_sale(tenant, quantity=1)
    body = {
        "sale_id": sold["sale_id"],
        "reason": "other",
        "lines": [{"sku": sold["sku"], "quantity": 1}],
    }
    key = {"Idempotency-Key": ref("key")}
    first = await tenant.post("/returns", body, headers=key)
    again = await tenant.post("/returns", body, headers=key)
    assert first.status == again.status == 201, (first, again)
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = await tenant.get("/returns", sale_id=sold["sale_id"])
    assert [r["id"] for r in listed.body["data"]] == [first.body["id"]]


async def test_receiving_restocks_and_records_discards_then_the_return_closes(tenant: Client):
    sold = await shipped_sale(tenant, quantity=3, stock=10)
    sku, location, record = sold["sku"], sold["location"], sold["record"]
    # shipping commits the sale's units (stock hears of it on Kafka)
    await eventually(lambda: on_hand(tenant, record), lambda q: q == 7, what="units committed")
    created = await tenant.post(
        "/returns",
        {"sale_id": sold["sale_id"], "reason": "damaged", "lines": [{"sku": sku, "quantity": 3}]},
    )
    ret = created.body
    path = f"/returns/{ret['id']}"
    early_close = await tenant.post(f"{path}/close")
    assert (early_close.status, early_close.problem_code) == (409, "conflict"), early_close
    assert early_close.body["return_status"] == "requested"
    too_many = await tenant.post(
        f"{path}/receive", {"lines": [restock(sku, 3, location), restock(sku, 1, location)]}
    )
    assert (too_many.status, too_many.problem_code) == (422, "validation"), too_many
    assert too_many.body["errors"] == [
        {
            "field": "/lines/1/quantity",
            "message": f"4 of {sku!r} received in all; the return asked for 3",
        }
    ]
    bad_location = await tenant.post(f"{path}/receive", {"lines": [restock(sku, 1, "not a code!")]})
    assert bad_location.status == 422, bad_location
    assert bad_location.body["errors"][0]["field"] == "/lines/0/location_id"

    received = await tenant.post(
        f"{path}/receive",
        {"lines": [restock(sku, 2, location), restock(sku, 1, location, "discard")]},
    )
    assert received.status == 200, received
    assert (received.body["status"], received.body["version"]) == ("received", 2)
    assert received.body["received_lines"] == [
        restock(sku, 2, location),
        restock(sku, 1, location, "discard"),
    ]
    assert received.body["received_at"] is not None
    assert received.headers["ETag"] == '"2"'
    again = await tenant.post(f"{path}/receive", {"lines": [restock(sku, 1, location)]})
    assert (again.status, again.problem_code) == (409, "conflict"), again
    late_cancel = await tenant.post(f"{path}/cancel")
    assert (late_cancel.status, late_cancel.problem_code) == (409, "conflict"), late_cancel
    assert late_cancel.body["return_status"] == "received"

    await eventually(
        lambda: on_hand(tenant, record), lambda q: q == 9, what="the restocked units on hand"
    )
    rows = await ledger(tenant, f"return:{ret['id']}")
    assert sorted(
        (r["reason"], r["quantity_change"], r["location_id"], r["sku"]) for r in rows
    ) == [
        ("discard", 0, location, sku),
        ("return", 2, location, sku),
    ]
    listed = await tenant.get("/stock/movements", reason="return", sku=sku)
    assert [r["quantity_change"] for r in listed.body["data"]] == [2]

    closed = await tenant.post(f"{path}/close")
    assert closed.status == 200, closed
    assert (closed.body["status"], closed.body["version"]) == ("closed", 3)
    assert closed.body["closed_at"] is not None
    twice = await tenant.post(f"{path}/close")
    assert (twice.status, twice.body["version"]) == (200, 3)
    sale = (await tenant.get(f"/sales/{sold['sale_id']}")).body
    assert [r["status"] for r in sale["returns"]] == ["closed"]
    assert (await tenant.get("/stock/integrity")).body["ok"] is True
    unknown = await tenant.post(
        f"/returns/{uuid.uuid4()}/receive", {"lines": [restock(sku, 1, location)]}
    )
    assert unknown.status == 404, unknown


async def test_a_restocked_return_fills_a_backordered_sale(tenant: Client):
    sold = await shipped_sale(tenant, quantity=3, stock=3)
    sku, location, record = sold["sku"], sold["location"], sold["record"]
    waiting = ref("S")
    created = await tenant.post("/sales", sale_body(waiting, location, (sku, 2)))
    assert created.status == 228 and created.body["status"] == "backordered", created
    ret = await tenant.post(
        "/returns",
        {
            "sale_id": sold["sale_id"],
            "reason": "no_longer_needed",
            "lines": [{"sku": sku, "quantity": 2}],
        },
    )
    received = await tenant.post(
        f"/returns/{ret.body['id']}/receive", {"lines": [restock(sku, 2, location)]}
    )
    assert received.status == 200, received
    await eventually(
        lambda: tenant.get(f"/sales/{waiting}"),
        lambda a: a.body["status"] == "pending",
        what="the backordered sale reserved from the returned units",
    )
    found = (await tenant.get(f"/stock/stock-records/{record['id']}")).body
    assert (found["quantity"], found["reserved"]) == (2, 2)


async def test_a_line_at_a_location_stock_does_not_know_is_left_out_and_noted(tenant: Client):
    sold = await shipped_sale(tenant, quantity=2)
    sku, location, record = sold["sku"], sold["location"], sold["record"]
    ret = await tenant.post(
        "/returns",
        {"sale_id": sold["sale_id"], "reason": "other", "lines": [{"sku": sku, "quantity": 2}]},
    )
    nowhere = ref("wh")
    received = await tenant.post(
        f"/returns/{ret.body['id']}/receive",
        {"lines": [restock(sku, 1, location), restock(sku, 1, nowhere)]},
    )
    assert received.status == 200 and received.body["status"] == "received", received
    rows = await eventually(
        lambda: ledger(tenant, f"return:{ret.body['id']}"), bool, what="the return's ledger"
    )
    assert [(r["reason"], r["quantity_change"], r["location_id"]) for r in rows] == [
        ("return", 1, location)
    ]
    assert rows[0]["notes"] == f"not_restocked: {sku} x 1 at {nowhere}"
    assert await on_hand(tenant, record) == 9
    records = await tenant.get("/stock/stock-records", sku=sku)
    assert [r["location_id"] for r in records.body["data"]] == [location]


async def test_returns_publish_their_events_keyed_by_the_sale_and_reach_webhooks(
    tenant: Client, infrastructure
):
    hook = await started()
    try:
        await register(
            tenant,
            hook.url,
            event_types=[c.RETURN_CREATED, c.RETURN_STATUS_CHANGED],
            ordered=True,  # one return's events in the order they happened
        )
        sold = await shipped_sale(tenant, quantity=1)
        sku, location = sold["sku"], sold["location"]
        ret = (
            await tenant.post(
                "/returns",
                {
                    "sale_id": sold["sale_id"],
                    "reason": "wrong_item",
                    "lines": [{"sku": sku, "quantity": 1}],
                },
            )
        ).body
        path = f"/returns/{ret['id']}"
        assert (
            await tenant.post(f"{path}/receive", {"lines": [restock(sku, 1, location)]})
        ).status == 200
        closed = (await tenant.post(f"{path}/close")).body

        arrivals = await eventually(
            polled(lambda: hook.of_type(c.RETURN_CREATED, c.RETURN_STATUS_CHANGED)),
            lambda found: len(found) == 3,
            what="the return's three webhooks",
        )
        assert [(a.type, a.json["data"]["status"]) for a in arrivals] == [
            (c.RETURN_CREATED, "requested"),
            (c.RETURN_STATUS_CHANGED, "received"),
            (c.RETURN_STATUS_CHANGED, "closed"),
        ]
        last = arrivals[-1].json["data"]
        assert last["previous_status"] == "received"
        assert last["version"] == 3 and last["id"] == ret["id"]
        assert last["sale"] == sold["sale"]["id"] and last["sale_id"] == sold["sale_id"]
        assert datetime.fromisoformat(last["closed_at"]) == datetime.fromisoformat(
            closed["closed_at"]
        )

        records = await read_all(infrastructure.bootstrap_servers, c.SALES_TOPIC)
        mine = [
            (r.key.decode(), e["type"], e["data"]["version"])
            for r in records
            if (e := as_event(r))
            and e["type"].startswith("return.")
            and e["data"].get("id") == ret["id"]
        ]
        key = c.sale_key(uuid.UUID(tenant.tenant_id), uuid.UUID(sold["sale"]["id"]))
        assert mine == [
            (key, c.RETURN_CREATED, 1),
            (key, c.RETURN_STATUS_CHANGED, 2),
            (key, c.RETURN_STATUS_CHANGED, 3),
        ]
    finally:
        await hook.stop()
