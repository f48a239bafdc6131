"""Many sales created in one request, as a shop importer sends what came in since its last run."""

import asyncio

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, eventually, ref

BATCH = "/sales/batch"


async def test_each_sale_of_a_batch_is_created_and_waits_for_its_own_reservation(
    tenant: Client,
):
    sku, location, record = await stocked_product(tenant, quantity=2)
    sale_ids = [ref("S") for _ in range(3)]
    bodies = [
        sale_body(sale_id, location, (sku, quantity))
        for sale_id, quantity in zip(sale_ids, (1, 1, 5), strict=True)
    ]

    answer = await tenant.post(BATCH, {"sales": bodies})

    assert answer.status == 200 and answer.body["errors"] == [], answer
    sales = answer.body["sales"]
    assert [(s["sale_id"], s["status"]) for s in sales] == [
        (sale_ids[0], "pending"),
        (sale_ids[1], "pending"),
        (sale_ids[2], "backordered"),
    ]
    for sale in sales:
        assert sale["status_history"][0]["to_status"] == "awaiting_stock"
        assert sale["lines"] == [
            line for b in bodies if b["sale_id"] == sale["sale_id"] for line in b["lines"]
        ]
        stored = await tenant.get(f"/sales/{sale['sale_id']}")
        assert stored.body == sale, "the answer is the sale as stored"
    stock = await tenant.get(f"/stock/stock-records/{record['id']}")
    assert (stock.body["quantity"], stock.body["reserved"]) == (2, 2)


async def test_a_taken_sale_id_is_reported_and_the_others_are_created(
    tenant: Client, other_tenant: Client
):
    sku, location, _ = await stocked_product(tenant, quantity=10)
    taken, fresh = ref("S"), ref("S")
    first = await tenant.post("/sales", sale_body(taken, location, (sku, 1)))
    assert first.status == 201, first

    answer = await tenant.post(
        BATCH,
        {"sales": [sale_body(taken, location, (sku, 3)), sale_body(fresh, location, (sku, 1))]},
    )

    assert answer.status == 200, answer
    assert [s["sale_id"] for s in answer.body["sales"]] == [fresh]
    assert [(e["sale_id"], e["code"]) for e in answer.body["errors"]] == [(taken, "duplicated")]
    kept = await tenant.get(f"/sales/{taken}")
    assert kept.body["lines"] == [{"sku": sku, "quantity": 1}], "the existing sale is untouched"

    again = await tenant.post(BATCH, {"sales": [sale_body(fresh, location, (sku, 1))]})
    assert (again.status, again.body["sales"]) == (200, []), again
    assert [e["sale_id"] for e in again.body["errors"]] == [fresh]

    assert (await other_tenant.post("/products", {"sku": sku, "name": "Theirs"})).status == 201
    elsewhere = await other_tenant.post(BATCH, {"sales": [sale_body(taken, location, (sku, 1))]})
    assert elsewhere.status == 200 and elsewhere.body["errors"] == [], "sale_ids are per tenant"
    assert [s["sale_id"] for s in elsewhere.body["sales"]] == [taken]


async def test_a_batch_is_refused_as_a_whole_only_for_its_own_shape(tenant: Client):
    good = sale_body(ref("S"), ref("wh"), ("SKU-1", 1))
    for body, field in [
        ({"sales": []}, "/sales"),
        ({"sales": [{**good, "sale_id": ref("S")} for _ in range(101)]}, "/sales"),
        ({"sales": [good, "not a sale"]}, "/sales/1"),
        ({"sales": [good, {**good, "customer": {"n": 2**64}}]}, "/sales/1/customer/n"),
    ]:
        answer = await tenant.post(BATCH, body)
        assert (answer.status, answer.problem_code) == (422, "validation"), (body, answer)
        assert field in {e["field"] for e in answer.body["errors"]}, answer
    assert (await tenant.get(f"/sales/{good['sale_id']}")).status == 404


async def test_each_invalid_sale_is_answered_and_the_others_are_created(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=10)
    first, second = sale_body(ref("S"), location, (sku, 1)), sale_body(ref("S"), location, (sku, 1))
    bad_line = sale_body(ref("S"), location, (sku, 0))
    no_lines = {**sale_body(ref("S"), location, (sku, 1)), "lines": []}
    extra = {**sale_body(ref("S"), location, (sku, 1)), "status": "pending"}
    nameless = {k: v for k, v in first.items() if k != "sale_id"}

    answer = await tenant.post(
        BATCH, {"sales": [bad_line, first, no_lines, first, extra, nameless, second]}
    )

    assert answer.status == 200, answer
    assert [s["sale_id"] for s in answer.body["sales"]] == [first["sale_id"], second["sale_id"]]
    assert answer.body["errors"] == [
        {
            "sale_id": bad_line["sale_id"],
            "index": 0,
            "code": "validation",
            "detail": "The sale has invalid fields.",
            "errors": [
                {"field": "/sales/0/lines/0/quantity", "message": "Input should be greater than 0"}
            ],
        },
        {
            "sale_id": no_lines["sale_id"],
            "index": 2,
            "code": "validation",
            "detail": "The sale has invalid fields.",
            "errors": [
                {
                    "field": "/sales/2/lines",
                    "message": "List should have at least 1 item after validation, not 0",
                }
            ],
        },
        {
            "sale_id": first["sale_id"],
            "index": 3,
            "code": "duplicated",
            "detail": f"sale_id {first['sale_id']!r} appears earlier in this batch.",
            "errors": [],
        },
        {
            "sale_id": extra["sale_id"],
            "index": 4,
            "code": "validation",
            "detail": "The sale has invalid fields.",
            "errors": [{"field": "/sales/4/status", "message": "Extra inputs are not permitted"}],
        },
        {
            "sale_id": None,
            "index": 5,
            "code": "validation",
            "detail": "The sale has invalid fields.",
            "errors": [{"field": "/sales/5/sale_id", "message": "Field required"}],
        },
    ]
    for refused in (bad_line, no_lines, extra):
        assert (await tenant.get(f"/sales/{refused['sale_id']}")).status == 404


async def test_respond_async_answers_at_once_and_the_sales_reserve_later(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_ids = [ref("S") for _ in range(2)]

    answer = await tenant.post(
        BATCH,
        {"sales": [sale_body(s, location, (sku, 1)) for s in sale_ids]},
        headers={"Prefer": "respond-async"},
    )

    assert answer.status == 202, answer
    assert answer.headers["Preference-Applied"] == "respond-async"
    assert [(s["sale_id"], s["status"]) for s in answer.body["sales"]] == [
        (s, "awaiting_stock") for s in sale_ids
    ]
    for sale_id in sale_ids:
        await eventually(
            lambda s=sale_id: tenant.get(f"/sales/{s}"),
            lambda r: r.body["status"] == "pending",
            what="reserved",
        )


async def test_an_idempotency_key_replays_the_batch_answer(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    body = {"sales": [sale_body(ref("S"), location, (sku, 1))]}
    headers = {"Idempotency-Key": ref("key")}

    first = await tenant.post(BATCH, body, headers=headers)
    second = await tenant.post(BATCH, body, headers=headers)

    assert first.status == 200 and first.body["errors"] == [], first
    assert (second.status, second.body) == (first.status, first.body)


async def test_concurrent_batches_sharing_sale_ids_create_each_sale_once(tenant: Client):
    """Two importers sending the same sales in opposite orders: no deadlock, no 5xx, and
    every sale created by exactly one of them."""
    sku, location, _ = await stocked_product(tenant, quantity=10_000)
    for _ in range(20):
        sale_ids = [ref("S") for _ in range(100)]
        bodies = [sale_body(s, location, (sku, 1)) for s in sale_ids]
        answers = await asyncio.gather(
            *(
                tenant.post(BATCH, {"sales": order})
                for order in (
                    bodies,
                    bodies[::-1],
                    bodies[::2] + bodies[1::2],
                    bodies[1::2][::-1] + bodies[::2],
                )
            )
        )

        assert [a.status for a in answers] == [200] * 4, [a.body for a in answers]
        created = [s["sale_id"] for a in answers for s in a.body["sales"]]
        assert sorted(created) == sorted(sale_ids), "each sale created exactly once"
        for answer in answers:
            reported = {s["sale_id"] for s in answer.body["sales"]} | {
                e["sale_id"] for e in answer.body["errors"]
            }
            assert reported == set(sale_ids)
