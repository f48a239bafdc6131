"""Many fulfillments moved forward in one request, as a warehouse system reports a wave."""

import uuid

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, eventually, ref

BATCH = "/fulfillment/fulfillments/status"


async def claimed(client: Client, count: int, stock: int = 10) -> tuple[list[dict], dict]:
    """`count` one-unit sales of one product, claimed for shipping: their fulfillments."""
    sku, location, record = await stocked_product(client, quantity=stock)
    sale_ids = [ref("S") for _ in range(count)]
    for sale_id in sale_ids:
        created = await client.post("/sales", sale_body(sale_id, location, (sku, 1)))
        assert created.body["status"] == "pending", created
    init = await client.post("/fulfillment/shipping/init", {"sale_ids": sale_ids})
    assert init.status == 200 and not init.body["errors"], init
    return init.body["fulfillments"], record


async def sale_status(client: Client, sale_id: str) -> str:
    return (await client.get(f"/sales/{sale_id}")).body["status"]


async def test_many_fulfillments_move_in_one_request_and_their_sales_ship(tenant: Client):
    (a, b, c), record = await claimed(tenant, 3, stock=10)
    updates = [
        {"id": a["id"], "status": "shipped"},
        {"id": b["id"], "status": "shipped"},
        {"id": c["id"], "status": "packed"},
    ]

    answer = await tenant.post(BATCH, {"updates": updates})

    assert answer.status == 200 and answer.body["errors"] == [], answer
    assert [(f["id"], f["status"]) for f in answer.body["fulfillments"]] == [
        (a["id"], "shipped"),
        (b["id"], "shipped"),
        (c["id"], "packed"),
    ]
    assert [await sale_status(tenant, f["sale_id"]) for f in (a, b, c)] == [
        "shipped",
        "shipped",
        "in_fulfillment",
    ]
    await eventually(
        lambda: tenant.get(f"/stock/stock-records/{record['id']}"),
        lambda r: (r.body["quantity"], r.body["reserved"]) == (8, 1),
        what="two units committed, one still reserved",
    )

    again = await tenant.post(BATCH, {"updates": updates})
    assert again.status == 200 and again.body == answer.body, "the same request, the same answer"
    history = (await tenant.get(f"/sales/{a['sale_id']}")).body["status_history"]
    assert [h["to_status"] for h in history].count("shipped") == 1


async def test_a_batch_reports_what_cannot_move_and_moves_the_rest(tenant: Client):
    (canceled, ahead, fine), _ = await claimed(tenant, 3)
    cancel = await tenant.post(
        "/sales/cancel", {"sale_id": canceled["sale_id"], "cancel_reason": "customer_request"}
    )
    assert cancel.status == 200
    single = await tenant.post(
        f"/fulfillment/fulfillments/{ahead['id']}/status", {"status": "shipped"}
    )
    assert single.status == 200
    unknown = str(uuid.uuid4())

    answer = await tenant.post(
        BATCH,
        {
            "updates": [
                {"id": canceled["id"], "status": "shipped"},
                {"id": ahead["id"], "status": "picking"},
                {"id": unknown, "status": "packed"},
                {"id": fine["id"], "status": "shipped"},
            ]
        },
    )

    assert answer.status == 200, answer
    assert [(f["id"], f["status"]) for f in answer.body["fulfillments"]] == [
        (fine["id"], "shipped")
    ]
    errors = {e["id"]: e for e in answer.body["errors"]}
    assert set(errors) == {canceled["id"], ahead["id"], unknown}
    assert errors[unknown]["code"] == "not_found"
    assert errors[ahead["id"]]["code"] == "conflict"
    assert errors[ahead["id"]]["fulfillment_status"] == "shipped"
    # refused by orders, or already canceled by the time it was read: never shipped
    assert errors[canceled["id"]]["code"] == "conflict"
    assert await sale_status(tenant, canceled["sale_id"]) == "canceled"
    await eventually(
        lambda: tenant.get(f"/fulfillment/fulfillments/{canceled['id']}"),
        lambda r: r.body["status"] == "canceled",
        what="fulfillment canceled",
    )
    assert await sale_status(tenant, fine["sale_id"]) == "shipped"


async def test_a_batch_is_validated_as_a_whole(tenant: Client):
    one = {"id": str(uuid.uuid4()), "status": "shipped"}
    for body, field in [
        ({"updates": []}, "/updates"),
        ({"updates": [one] * 2}, "/updates"),
        ({"updates": [{**one, "id": str(uuid.uuid4())} for _ in range(101)]}, "/updates"),
        ({"updates": [{**one, "status": "lost"}]}, "/updates/0/status"),
        ({"updates": [{**one, "id": "F" * 1001}]}, "/updates/0/id"),  # "F-1": not_found
    ]:
        answer = await tenant.post(BATCH, body)
        assert (answer.status, answer.problem_code) == (422, "validation"), (body, answer)
        assert field in {e["field"] for e in answer.body["errors"]}, answer


async def test_another_tenants_fulfillment_is_not_found_and_stays(
    tenant: Client, other_tenant: Client
):
    [theirs], _ = await claimed(other_tenant, 1)
    [mine], _ = await claimed(tenant, 1)

    answer = await tenant.post(
        BATCH,
        {
            "updates": [
                {"id": theirs["id"], "status": "shipped"},
                {"id": mine["id"], "status": "picking"},
            ]
        },
    )

    assert answer.status == 200, answer
    assert [(e["id"], e["code"]) for e in answer.body["errors"]] == [(theirs["id"], "not_found")]
    assert [f["id"] for f in answer.body["fulfillments"]] == [mine["id"]]
    still = await other_tenant.get(f"/fulfillment/fulfillments/{theirs['id']}")
    assert still.body["status"] == "waiting_for_picking"
    assert await sale_status(other_tenant, theirs["sale_id"]) == "in_fulfillment"


async def test_one_fulfillment_moved_alone_is_answered_as_its_batch_item(tenant: Client):
    """`POST /fulfillments/{id}/status` is a batch of one: what the batch lists as an item's
    error, the single request answers as its problem (404 or 409, same detail and fields)."""
    (canceled, shipped), _ = await claimed(tenant, 2)
    cancel = await tenant.post(
        "/sales/cancel", {"sale_id": canceled["sale_id"], "cancel_reason": "customer_request"}
    )
    assert cancel.status == 200
    await eventually(
        lambda: tenant.get(f"/fulfillment/fulfillments/{canceled['id']}"),
        lambda r: r.body["status"] == "canceled",
        what="fulfillment canceled",
    )
    first = await tenant.post(
        f"/fulfillment/fulfillments/{shipped['id']}/status", {"status": "shipped"}
    )
    assert (first.status, first.body["status"]) == (200, "shipped"), first

    for fid, status, answer in [
        (str(uuid.uuid4()), "packed", 404),
        ("not-a-uuid", "packed", 404),
        (shipped["id"], "picking", 409),
        (canceled["id"], "shipped", 409),
        (shipped["id"], "shipped", 200),
    ]:
        single = await tenant.post(f"/fulfillment/fulfillments/{fid}/status", {"status": status})
        batch = await tenant.post(BATCH, {"updates": [{"id": fid, "status": status}]})
        assert single.status == answer, (fid, status, single)
        if answer == 200:
            assert batch.body == {"fulfillments": [single.body], "errors": []}
            continue
        [error] = batch.body["errors"]
        assert single.problem_code == ("no_content" if answer == 404 else "conflict")
        assert error["code"] == ("not_found" if answer == 404 else "conflict")
        problem = {k: v for k, v in single.body.items() if k not in ("type", "title", "status")}
        item = {k: v for k, v in error.items() if k != "id"}
        assert problem == {**item, "code": single.problem_code}, (single, batch)
