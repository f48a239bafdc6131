"""An edit of a sale's lines or location moves its reservation, against real Kafka and
PostgreSQL: stock releases what the sale held (or takes it off the backorder queue) and
reserves the new lines in one transaction, all or nothing; short, the sale is backordered
with issues; denied, it is canceled; stock records before and after, and the integrity
check stays clean (docs/api-guide.md, "Editing a sale")."""

import uuid
from typing import Any

import asyncpg

from fulfilkit import contracts as c
from tests.e2e.sale_events import consumed, event, publish
from tests.e2e.test_routing import allocated, records
from tests.e2e.test_routing import location as routing_location
from tests.e2e.test_routing import product as routed_product
from tests.e2e.test_sale_edits import patch
from tests.e2e.test_stock_policies import location, product, record_of, sale
from tests.e2e.webhook_tools import deliveries, polled, register, started
from tests.kafka_tools import produce
from tests.support import Client, eventually


async def figures(client: Client, *skus: str) -> list[tuple[int, int, int]]:
    """(quantity, reserved, available) of each SKU's one record."""
    out = []
    for sku in skus:
        r = await record_of(client, sku)
        out.append((r["quantity"], r["reserved"], r["available"]))
    return out


async def restock(client: Client, sku: str, at: str, quantity: int) -> None:
    answer = await client.post(
        "/stock/stock-level-updates",
        {"sku": sku, "location_id": at, "quantity": quantity, "update_type": "restock"},
    )
    assert answer.status in (200, 201), answer


async def integrity_ok(client: Client) -> None:
    answer = await client.get("/stock/integrity")
    assert answer.status == 200 and answer.body["ok"], answer


def history(sale_body: dict[str, Any]) -> list[tuple[str | None, str, str | None]]:
    return [(h["from_status"], h["to_status"], h["reason"]) for h in sale_body["status_history"]]


async def created(client: Client, body: dict[str, Any], status: str) -> dict[str, Any]:
    answer = await client.post("/sales", body)
    assert answer.body["status"] == status, answer
    return answer.body


async def test_new_lines_replace_the_reservation_in_one_step(tenant: Client):
    at = await location(tenant)
    mug, cup = await product(tenant, at, 10), await product(tenant, at, 10)
    sale_ = await created(tenant, sale(at, (mug, 2)), "pending")
    assert await figures(tenant, mug, cup) == [(10, 2, 8), (10, 0, 10)]

    lines = [{"sku": cup, "quantity": 3}, {"sku": mug, "quantity": 1}]
    answer = await patch(tenant, sale_["sale_id"], {"lines": lines}, 2)
    assert answer.status == 200, answer
    edited = answer.body
    assert (edited["status"], edited["version"], edited["issues"]) == ("pending", 4, [])
    assert answer.headers["ETag"] == '"4"'
    assert edited["lines"] == lines
    assert history(edited)[-2:] == [
        ("pending", "awaiting_stock", "edited"),
        ("awaiting_stock", "pending", "stock_reserved"),
    ]
    reservation = edited["reservation"]
    assert reservation["sale_version"] == 3 and reservation["status"] == "active"
    assert reservation["id"] == sale_["reservation"]["id"]  # one reservation per sale
    assert reservation["version"] == sale_["reservation"]["version"] + 1
    assert sorted((ln["sku"], ln["quantity"]) for ln in reservation["lines"]) == sorted(
        [(cup, 3), (mug, 1)]
    )
    assert await figures(tenant, mug, cup) == [(10, 1, 9), (10, 3, 7)]
    await integrity_ok(tenant)


async def test_new_lines_that_do_not_fit_backorder_the_sale_until_stock_arrives(
    tenant: Client,
):
    at = await location(tenant)
    mug = await product(tenant, at, 5)
    sale_ = await created(tenant, sale(at, (mug, 2)), "pending")

    answer = await patch(tenant, sale_["sale_id"], {"lines": [{"sku": mug, "quantity": 7}]}, 2)
    assert answer.status == 200, answer
    edited = answer.body
    assert (edited["status"], edited["version"]) == ("backordered", 4)
    assert edited["issues"] == [
        {"sku": mug, "requested": 7, "available": 5, "reason": "insufficient_stock"}
    ]
    assert history(edited)[-1] == ("awaiting_stock", "backordered", "stock_short")
    # the 2 units it held are released, nothing is held for the 7 it asks now
    assert await figures(tenant, mug) == [(5, 0, 5)]
    await integrity_ok(tenant)

    await restock(tenant, mug, at, 3)
    filled = await eventually(
        lambda: tenant.get(f"/sales/{sale_['sale_id']}"),
        lambda a: a.body["status"] == "pending",
        what="the edited sale reserved once stock arrived",
    )
    assert filled.body["reservation"]["sale_version"] == 3
    assert [(ln["sku"], ln["quantity"]) for ln in filled.body["reservation"]["lines"]] == [(mug, 7)]
    assert await figures(tenant, mug) == [(8, 7, 1)]
    await integrity_ok(tenant)


async def test_a_backordered_sale_edited_to_fit_leaves_the_queue(tenant: Client):
    at = await location(tenant)
    mug = await product(tenant, at, 3)
    sale_ = await created(tenant, sale(at, (mug, 5)), "backordered")
    answer = await patch(tenant, sale_["sale_id"], {"lines": [{"sku": mug, "quantity": 3}]}, 2)
    assert answer.status == 200 and answer.body["status"] == "pending", answer
    assert answer.body["issues"] == []
    assert await figures(tenant, mug) == [(3, 3, 0)]
    # a restock later finds nothing of it in the queue: nothing is reserved twice
    other = await created(tenant, sale(at, (mug, 1)), "backordered")
    await restock(tenant, mug, at, 1)
    await eventually(
        lambda: tenant.get(f"/sales/{other['sale_id']}"),
        lambda a: a.body["status"] == "pending",
        what="the other backordered sale reserved",
    )
    assert await figures(tenant, mug) == [(4, 4, 0)]
    read = await tenant.get(f"/sales/{sale_['sale_id']}")
    assert (read.body["status"], read.body["version"]) == ("pending", 4)
    await integrity_ok(tenant)


async def test_a_new_location_moves_the_reservation_there(tenant: Client):
    first, second = await location(tenant), await location(tenant)
    mug = await product(tenant, first, 4)
    assert (
        await tenant.post(
            "/stock/stock-records", {"sku": mug, "location_id": second, "quantity": 6}
        )
    ).status == 201
    sale_ = await created(tenant, sale(first, (mug, 4)), "pending")

    answer = await patch(tenant, sale_["sale_id"], {"location_id": second}, 2)
    assert answer.status == 200, answer
    assert (answer.body["status"], answer.body["location_id"]) == ("pending", second)
    assert answer.body["reservation"]["location_id"] == second
    by_location = {
        r["location_id"]: (r["reserved"], r["available"])
        for r in (await tenant.get("/stock/stock-records", sku=mug)).body["data"]
    }
    assert by_location == {first: (0, 4), second: (4, 2)}
    await integrity_ok(tenant)


async def test_an_edit_to_a_product_that_denies_backorders_cancels_the_sale(tenant: Client):
    at = await location(tenant)
    mug = await product(tenant, at, 5)
    scarce = await product(tenant, at, 1, backorders="deny")
    sale_ = await created(tenant, sale(at, (mug, 2)), "pending")
    lines = [{"sku": mug, "quantity": 2}, {"sku": scarce, "quantity": 3}]
    answer = await patch(tenant, sale_["sale_id"], {"lines": lines}, 2)
    assert answer.status == 422, answer
    assert answer.body["code"] == "validation"
    assert [e["field"] for e in answer.body["errors"]] == ["/lines/1/quantity"]
    read = (await tenant.get(f"/sales/{sale_['sale_id']}")).body
    assert (read["status"], read["cancel_reason"]) == ("canceled", "backorder_denied")
    assert await figures(tenant, mug, scarce) == [(5, 0, 5), (1, 0, 1)]
    await integrity_ok(tenant)


async def test_respond_async_answers_202_then_the_outcome_shows(tenant: Client):
    at = await location(tenant)
    mug = await product(tenant, at, 5)
    sale_ = await created(tenant, sale(at, (mug, 1)), "pending")
    answer = await patch(
        tenant,
        sale_["sale_id"],
        {"lines": [{"sku": mug, "quantity": 2}]},
        2,
        Prefer="respond-async",
    )
    assert answer.status == 202, answer
    assert answer.headers["Preference-Applied"] == "respond-async"
    assert (answer.body["status"], answer.body["version"]) == ("awaiting_stock", 3)
    assert answer.body["reservation"] is None
    done = await eventually(
        lambda: tenant.get(f"/sales/{sale_['sale_id']}"),
        lambda a: a.body["status"] == "pending",
        what="the edited sale reserved",
    )
    assert done.body["version"] == 4
    assert await figures(tenant, mug) == [(5, 2, 3)]


async def test_an_edit_of_details_alone_leaves_stock_as_it_is(tenant: Client):
    at = await location(tenant)
    mug = await product(tenant, at, 5)
    sale_ = await created(tenant, sale(at, (mug, 2)), "pending")
    answer = await patch(tenant, sale_["sale_id"], {"priority": "urgent"}, 2)
    assert (answer.status, answer.body["status"], answer.body["version"]) == (200, "pending", 3)
    again = await patch(tenant, sale_["sale_id"], {"lines": sale_["lines"]}, 3)  # same lines
    assert (again.status, again.body["version"]) == (200, 3)
    assert await figures(tenant, mug) == [(5, 2, 3)]
    reservations = await tenant.get(f"/sales/{sale_['sale_id']}")
    assert reservations.body["reservation"] == sale_["reservation"]


# --- routed sales ----------------------------------------------------------------------------


async def test_an_edit_to_no_location_routes_the_sale_and_may_split_it(tenant: Client):
    first = await routing_location(tenant, 1, default=True)
    second = await routing_location(tenant, 2)
    mug = await routed_product(tenant, {first: 3, second: 4})
    sale_ = await created(tenant, sale(first, (mug, 2)), "pending")
    answer = await patch(
        tenant, sale_["sale_id"], {"location_id": None, "lines": [{"sku": mug, "quantity": 5}]}, 2
    )
    assert answer.status == 200, answer
    edited = answer.body
    assert (edited["status"], edited["location_id"], edited["version"]) == ("pending", None, 4)
    # split: the first location in routing order gives what it has, the next the rest
    assert allocated(edited) == [(first, [(mug, 3)]), (second, [(mug, 2)])]
    assert await records(tenant, mug) == {(first, mug): (3, 3), (second, mug): (4, 2)}

    # not split any more: no one location holds 5, so it waits at the default, holding nothing
    answer = await patch(tenant, sale_["sale_id"], {"allow_split": False}, 4)
    assert answer.status == 200, answer
    assert (answer.body["status"], answer.body["allow_split"]) == ("backordered", False)
    assert answer.body["allocations"] == []
    assert [i["sku"] for i in answer.body["issues"]] == [mug]
    assert await records(tenant, mug) == {(first, mug): (3, 0), (second, mug): (4, 0)}

    # fewer units: whole at the first location in routing order that can
    answer = await patch(tenant, sale_["sale_id"], {"lines": [{"sku": mug, "quantity": 3}]}, 6)
    assert answer.status == 200 and answer.body["status"] == "pending", answer
    assert allocated(answer.body) == [(first, [(mug, 3)])]
    assert await records(tenant, mug) == {(first, mug): (3, 3), (second, mug): (4, 0)}
    await integrity_ok(tenant)

    cancel = await tenant.post(
        "/sales/cancel", {"sale_id": sale_["sale_id"], "cancel_reason": "other"}
    )
    assert cancel.status == 200, cancel
    await eventually(
        lambda: records(tenant, mug),
        lambda found: found == {(first, mug): (3, 0), (second, mug): (4, 0)},
        what="every part released",
    )
    await integrity_ok(tenant)


# --- late and replayed events ----------------------------------------------------------------


async def test_stock_ignores_an_edit_not_newer_than_what_it_reserved(
    tenant: Client, infrastructure
):
    at = await location(tenant)
    mug = await product(tenant, at, 10)
    sale_ = await created(tenant, sale(at, (mug, 2)), "pending")
    answer = await patch(tenant, sale_["sale_id"], {"lines": [{"sku": mug, "quantity": 3}]}, 2)
    assert answer.status == 200 and answer.body["reservation"]["sale_version"] == 3, answer
    # the same edit replayed with other lines, and an older one
    stale = [
        c.SaleUpdated.model_validate(
            answer.body
            | {"version": version, "lines": [{"sku": mug, "quantity": units}]}
            | {"previous_status": "pending", "changed": ["lines"]}
        )
        for version, units in ((3, 7), (2, 1))
    ]
    replays = [event(c.SALE_UPDATED, tenant.tenant_id, data) for data in stale]
    await publish(infrastructure.bootstrap_servers, replays)
    await consumed(infrastructure.bootstrap_servers)  # stock records no inbox row for them
    assert await figures(tenant, mug) == [(10, 3, 7)]
    read = (await tenant.get(f"/sales/{sale_['sale_id']}")).body
    assert (read["status"], read["version"], read["reservation"]) == (
        "pending",
        4,
        answer.body["reservation"],
    )
    await integrity_ok(tenant)


async def test_orders_ignores_an_outcome_older_than_the_last_edit(tenant: Client, infrastructure):
    at = await location(tenant)
    mug = await product(tenant, at, 10)
    sale_ = await created(tenant, sale(at, (mug, 2)), "pending")
    answer = await patch(tenant, sale_["sale_id"], {"lines": [{"sku": mug, "quantity": 20}]}, 2)
    assert (answer.status, answer.body["status"], answer.body["version"]) == (
        200,
        "backordered",
        4,
    ), answer
    # the first reservation's answer arriving late: it answers version 1
    late = c.ReservationSnapshot.model_validate(sale_["reservation"] | {"sale_version": 1})
    forged = c.make_event(
        source="/stock",
        type=c.STOCK_RESERVED,
        tenant_id=uuid.UUID(tenant.tenant_id),
        subject=f"sale/{sale_['id']}",
        data=late,
    )
    key = c.sale_key(forged.tenantid, uuid.UUID(sale_["id"])).encode()
    await produce(infrastructure.bootstrap_servers, c.STOCK_TOPIC, [(key, forged.to_bytes())])
    await applied(infrastructure.database_url, "orders", [forged.id])
    read = (await tenant.get(f"/sales/{sale_['sale_id']}")).body
    assert (read["status"], read["version"]) == ("backordered", 4)
    assert read["issues"] == answer.body["issues"] and read["reservation"]["sale_version"] == 3


async def applied(database_url: str, schema: str, event_ids: list[Any]) -> None:
    """Wait until `schema`'s consumer has applied these events (its inbox holds them)."""
    db = await asyncpg.connect(database_url)
    try:
        await eventually(
            lambda: db.fetchval(
                f"SELECT count(*) FROM {schema}.inbox WHERE event_id = ANY($1::uuid[])",
                event_ids,
            ),
            lambda n: n == len(event_ids),
            what=f"{schema} applied the events",
        )
    finally:
        await db.close()


async def test_a_webhook_filtered_on_awaiting_stock_gets_only_the_edits_that_move_stock(
    tenant: Client,
):
    hook = await started()
    try:
        filters = {"sale.updated": {"status": ["awaiting_stock"]}}
        endpoint = await register(tenant, hook.url, event_types=["sale.updated"], filters=filters)
        at = await location(tenant)
        mug = await product(tenant, at, 5)
        sale_ = await created(tenant, sale(at, (mug, 2)), "pending")
        details = await patch(tenant, sale_["sale_id"], {"instructions": "Fragile"}, 2)
        assert details.status == 200 and details.body["status"] == "pending", details
        moved = await patch(tenant, sale_["sale_id"], {"lines": [{"sku": mug, "quantity": 1}]}, 3)
        assert moved.status == 200 and moved.body["status"] == "pending", moved
        [arrival] = await eventually(
            polled(
                lambda: [a for a in hook.received if a.json["data"]["sale_id"] == sale_["sale_id"]]
            ),
            lambda found: len(found) >= 1,
            what="the sale.updated delivery",
        )
        # the two edits are planned in order (one sale, one partition): the detail edit,
        # planned first, was filtered out and left no delivery
        assert len(await deliveries(tenant, endpoint["id"])) == 1
        data = arrival.json["data"]
        assert (arrival.type, data["version"], data["status"], data["previous_status"]) == (
            "sale.updated",
            4,
            "awaiting_stock",
            "pending",
        )
        assert data["changed"] == ["lines"] and data["reservation"] is None
    finally:
        await hook.stop()


async def test_a_move_to_where_a_product_that_denies_backorders_is_short_cancels_the_sale(
    tenant: Client,
):
    first, second = await location(tenant), await location(tenant)
    scarce = await product(tenant, first, 5, backorders="deny")
    sale_ = await created(tenant, sale(first, (scarce, 2)), "pending")
    answer = await patch(tenant, sale_["sale_id"], {"location_id": second}, 2)
    assert answer.status == 200, answer  # no lines in the body to point at
    assert (answer.body["status"], answer.body["cancel_reason"]) == ("canceled", "backorder_denied")
    assert [(i["sku"], i["requested"], i["reason"]) for i in answer.body["issues"]] == [
        (scarce, 2, "backorder_denied")
    ]
    assert await figures(tenant, scarce) == [(5, 0, 5)]
    await integrity_ok(tenant)
