"""Stock levels through the gateway: set, change, count, transfer, the ledger and the events
that announce every change on the real broker."""

from dataclasses import dataclass

import pytest

from fulfilkit import contracts as c
from tests.e2e.stocking import sale_body, stocked_product
from tests.kafka_tools import as_event, read_all
from tests.support import Client, eventually, ref

UPDATE = "/stock/stock-records/update"
CHANGE = "/stock/stock-records/change"
LEVELS = "/stock/stock-level-updates"


async def new_location(client: Client) -> str:
    location = ref("wh")
    answer = await client.post("/locations", {"location_id": location, "name": "Warehouse"})
    assert answer.status == 201, answer
    return location


async def new_product(client: Client, min_level: int = 0) -> str:
    sku = ref("SKU")
    answer = await client.post("/products", {"sku": sku, "name": "Mug", "min_level": min_level})
    assert answer.status == 201, answer
    return sku


async def stocked(client: Client, location: str, quantity: int, min_level: int = 0) -> dict:
    """A new product with a stock record of `quantity` at `location`; returns the record."""
    sku = await new_product(client, min_level)
    answer = await client.post(
        "/stock/stock-records", {"sku": sku, "location_id": location, "quantity": quantity}
    )
    assert answer.status == 201, answer
    return answer.body


async def reserve(client: Client, location: str, *lines: tuple[str, int]) -> str:
    sale_id = ref("S")
    answer = await client.post("/sales", sale_body(sale_id, location, *lines))
    assert answer.status == 201, answer
    assert answer.body["status"] == "pending", answer
    return sale_id


async def figures(client: Client, *records: dict) -> list[tuple[int, int, int]]:
    """(quantity, reserved, version) of each record as the API shows it now."""
    out = []
    for record in records:
        answer = await client.get(f"/stock/stock-records/{record['id']}")
        assert answer.status == 200, answer
        out.append((answer.body["quantity"], answer.body["reserved"], answer.body["version"]))
    return out


async def movements(client: Client, **params: str) -> list[dict]:
    answer = await client.get("/stock/movements", limit=1000, **params)
    assert answer.status == 200, answer
    return answer.body["data"]


def pointers(answer) -> list[str]:
    return [e["field"] for e in answer.body["errors"]]


async def stock_events(bootstrap: str, record_id: str) -> list[dict]:
    """Every event on stock.events about one stock record, in partition order."""
    found = []
    for message in await read_all(bootstrap, c.STOCK_TOPIC):
        event = as_event(message)
        if event is not None and event["data"].get("id") == record_id:
            found.append(event)
    return found


# Setting and changing on-hand quantities, all or none


async def test_change_adds_and_subtracts_and_writes_the_ledger(tenant: Client):
    location = await new_location(tenant)
    a, b = await stocked(tenant, location, 10), await stocked(tenant, location, 5)
    answer = await tenant.post(
        CHANGE,
        {
            "stock_records": [
                {"id": a["id"], "quantity_change": 7},
                {"id": b["id"], "quantity_change": -5},
            ],
            "notes": "cycle count fix",
        },
    )
    assert answer.status == 200, answer
    assert [
        (r["id"], r["quantity"], r["available"], r["version"]) for r in answer.body["stock_records"]
    ] == [(a["id"], 17, 17, 2), (b["id"], 0, 0, 2)]
    assert await figures(tenant, a, b) == [(17, 0, 2), (0, 0, 2)]
    [row] = await movements(tenant, sku=a["sku"], reason="adjustment")
    assert (row["quantity_change"], row["quantity_after"], row["notes"]) == (
        7,
        17,
        "cycle count fix",
    )


async def test_change_below_reserved_refuses_the_whole_list(tenant: Client):
    location = await new_location(tenant)
    a, b, d = [await stocked(tenant, location, q) for q in (10, 5, 4)]
    await reserve(tenant, location, (b["sku"], 3))
    before = await figures(tenant, a, b, d)
    assert before[1] == (5, 3, 2)

    answer = await tenant.post(
        CHANGE,
        {
            "stock_records": [
                {"id": a["id"], "quantity_change": -2},
                {"id": b["id"], "quantity_change": -3},
                {"id": d["id"], "quantity_change": 1},
            ]
        },
    )
    assert answer.status == 409, answer
    assert answer.problem_code == "conflict"
    assert [(e["field"], e["stock_record_id"]) for e in answer.body["errors"]] == [
        ("/stock_records/1/quantity_change", b["id"])
    ]
    assert await figures(tenant, a, b, d) == before
    assert await movements(tenant, location_id=location, reason="adjustment") == []


async def test_change_below_zero_names_every_offending_record_and_changes_none(tenant: Client):
    location = await new_location(tenant)
    a, b, d = [await stocked(tenant, location, q) for q in (10, 5, 4)]
    answer = await tenant.post(
        CHANGE,
        {
            "stock_records": [
                {"id": a["id"], "quantity_change": -11},
                {"id": b["id"], "quantity_change": 2},
                {"id": d["id"], "quantity_change": -5},
            ]
        },
    )
    assert answer.status == 409, answer
    assert answer.problem_code == "conflict"
    assert [(e["field"], e["stock_record_id"]) for e in answer.body["errors"]] == [
        ("/stock_records/0/quantity_change", a["id"]),
        ("/stock_records/2/quantity_change", d["id"]),
    ]
    assert await figures(tenant, a, b, d) == [(10, 0, 1), (5, 0, 1), (4, 0, 1)]


async def test_update_sets_quantities_and_writes_audit_rows(tenant: Client):
    location = await new_location(tenant)
    a, b = await stocked(tenant, location, 10), await stocked(tenant, location, 5)
    answer = await tenant.post(
        UPDATE,
        {
            "stock_records": [{"id": a["id"], "quantity": 3}, {"id": b["id"], "quantity": 12}],
            "notes": "stocktake",
        },
    )
    assert answer.status == 200, answer
    assert [(r["quantity"], r["version"]) for r in answer.body["stock_records"]] == [
        (3, 2),
        (12, 2),
    ]
    rows = await movements(tenant, location_id=location, reason="audit")
    counted = [
        (r["sku"], r["quantity_change"], r["quantity_after"], r["notes"])
        for r in rows
        if r["reference"] != "created"
    ]
    assert counted == [(a["sku"], -7, 3, "stocktake"), (b["sku"], 7, 12, "stocktake")]


async def test_update_below_reserved_refuses_the_whole_list(tenant: Client):
    location = await new_location(tenant)
    a, b = await stocked(tenant, location, 10), await stocked(tenant, location, 5)
    await reserve(tenant, location, (b["sku"], 3))
    before = await figures(tenant, a, b)
    answer = await tenant.post(
        UPDATE, {"stock_records": [{"id": a["id"], "quantity": 8}, {"id": b["id"], "quantity": 2}]}
    )
    assert answer.status == 409, answer
    assert answer.problem_code == "conflict"
    assert [(e["field"], e["stock_record_id"]) for e in answer.body["errors"]] == [
        ("/stock_records/1/quantity", b["id"])
    ]
    assert await figures(tenant, a, b) == before


async def test_stale_compare_quantity_refuses_the_update(tenant: Client):
    location = await new_location(tenant)
    a, b = await stocked(tenant, location, 10), await stocked(tenant, location, 5)
    await tenant.post(CHANGE, {"stock_records": [{"id": b["id"], "quantity_change": 1}]})
    stale = await tenant.post(
        UPDATE,
        {
            "stock_records": [
                {"id": a["id"], "quantity": 20, "compare_quantity": 10},
                {"id": b["id"], "quantity": 20, "compare_quantity": 5},
            ]
        },
    )
    assert stale.status == 409, stale
    assert stale.problem_code == "conflict"
    assert pointers(stale) == ["/stock_records/1/compare_quantity"]
    assert await figures(tenant, a, b) == [(10, 0, 1), (6, 0, 2)]

    fresh = await tenant.post(
        UPDATE,
        {
            "stock_records": [
                {"id": a["id"], "quantity": 20, "compare_quantity": 10},
                {"id": b["id"], "quantity": 20, "compare_quantity": 6},
            ]
        },
    )
    assert fresh.status == 200, fresh
    assert await figures(tenant, a, b) == [(20, 0, 2), (20, 0, 3)]


async def test_stale_version_refuses_the_update(tenant: Client):
    location = await new_location(tenant)
    a, b = await stocked(tenant, location, 10), await stocked(tenant, location, 5)
    await tenant.post(CHANGE, {"stock_records": [{"id": a["id"], "quantity_change": 1}]})
    stale = await tenant.post(
        UPDATE,
        {
            "stock_records": [
                {"id": a["id"], "quantity": 1, "version": 1},
                {"id": b["id"], "quantity": 1, "version": 1},
            ]
        },
    )
    assert stale.status == 409, stale
    assert stale.problem_code == "conflict"
    assert pointers(stale) == ["/stock_records/0/version"]
    assert await figures(tenant, a, b) == [(11, 0, 2), (5, 0, 1)]

    fresh = await tenant.post(
        UPDATE,
        {
            "stock_records": [
                {"id": a["id"], "quantity": 1, "version": 2},
                {"id": b["id"], "quantity": 1, "version": 1},
            ]
        },
    )
    assert fresh.status == 200, fresh
    assert await figures(tenant, a, b) == [(1, 0, 3), (1, 0, 2)]


async def test_if_match_guards_a_single_record_update(tenant: Client):
    location = await new_location(tenant)
    a = await stocked(tenant, location, 10)
    body = {"stock_records": [{"id": a["id"], "quantity": 4}]}
    await tenant.post(CHANGE, {"stock_records": [{"id": a["id"], "quantity_change": 1}]})

    stale = await tenant.post(UPDATE, body, headers={"If-Match": '"1"'})
    assert stale.status == 409, stale
    assert stale.problem_code == "conflict"
    assert await figures(tenant, a) == [(11, 0, 2)]

    fresh = await tenant.post(UPDATE, body, headers={"If-Match": '"2"'})
    assert fresh.status == 200, fresh
    assert await figures(tenant, a) == [(4, 0, 3)]


async def test_if_match_with_several_records_is_a_validation_error(tenant: Client):
    location = await new_location(tenant)
    a, b = await stocked(tenant, location, 10), await stocked(tenant, location, 5)
    answer = await tenant.post(
        UPDATE,
        {"stock_records": [{"id": a["id"], "quantity": 1}, {"id": b["id"], "quantity": 1}]},
        headers={"If-Match": '"1"'},
    )
    assert answer.status == 422, answer
    assert answer.problem_code == "validation"
    assert answer.body["errors"][0]["field"] == "/stock_records"
    assert await figures(tenant, a, b) == [(10, 0, 1), (5, 0, 1)]


@pytest.mark.parametrize(
    ("path", "change"),
    [
        (UPDATE, {"quantity": 1}),
        (CHANGE, {"quantity_change": 1}),
    ],
)
async def test_unknown_or_foreign_record_ids_are_validation_errors(
    tenant: Client,
    other_tenant: Client,
    path: str,
    change: dict,
):
    location = await new_location(tenant)
    a = await stocked(tenant, location, 10)
    theirs = await stocked(other_tenant, await new_location(other_tenant), 10)
    answer = await tenant.post(
        path,
        {
            "stock_records": [
                {"id": a["id"], **change},
                {"id": "00000000-0000-4000-8000-000000000000", **change},
                {"id": theirs["id"], **change},
            ]
        },
    )
    assert answer.status == 422, answer
    assert answer.problem_code == "validation"
    assert pointers(answer) == ["/stock_records/1/id", "/stock_records/2/id"]
    assert await figures(tenant, a) == [(10, 0, 1)]
    assert await figures(other_tenant, theirs) == [(10, 0, 1)]
    foreign = await tenant.get(f"/stock/stock-records/{theirs['id']}")
    assert (foreign.status, foreign.problem_code) == (404, "no_content")
    assert await movements(tenant, sku=theirs["sku"]) == []


@pytest.mark.parametrize(
    ("path", "change"),
    [
        (UPDATE, {"quantity": 1}),
        (CHANGE, {"quantity_change": 1}),
    ],
)
async def test_a_record_listed_twice_is_a_validation_error(tenant: Client, path: str, change: dict):
    location = await new_location(tenant)
    a, b = await stocked(tenant, location, 10), await stocked(tenant, location, 5)
    answer = await tenant.post(
        path,
        {
            "stock_records": [
                {"id": a["id"], **change},
                {"id": b["id"], **change},
                {"id": a["id"], **change},
            ]
        },
    )
    assert answer.status == 422, answer
    assert answer.problem_code == "validation"
    assert pointers(answer) == ["/stock_records/2/id"]
    assert await figures(tenant, a, b) == [(10, 0, 1), (5, 0, 1)]


async def test_malformed_level_requests_point_at_their_fields(tenant: Client):
    empty = await tenant.post(CHANGE, {"stock_records": []})
    assert empty.status == 422
    assert pointers(empty) == ["/stock_records"]
    bad = await tenant.post(
        UPDATE, {"stock_records": [{"id": "not-a-uuid", "quantity": -1, "version": 0}]}
    )
    assert bad.status == 422
    assert bad.problem_code == "validation"
    assert set(pointers(bad)) == {
        "/stock_records/0/id",
        "/stock_records/0/quantity",
        "/stock_records/0/version",
    }


async def test_change_retried_with_its_idempotency_key_applies_once(tenant: Client):
    location = await new_location(tenant)
    a = await stocked(tenant, location, 10)
    key = ref("idem")
    body = {"stock_records": [{"id": a["id"], "quantity_change": -3}]}

    first = await tenant.post(CHANGE, body, headers={"Idempotency-Key": key})
    assert first.status == 200, first
    assert "Idempotent-Replayed" not in first.headers
    again = await tenant.post(CHANGE, body, headers={"Idempotency-Key": key})
    assert again.status == 200, again
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.body == first.body
    assert await figures(tenant, a) == [(7, 0, 2)]

    other = await tenant.post(
        CHANGE,
        {"stock_records": [{"id": a["id"], "quantity_change": -4}]},
        headers={"Idempotency-Key": key},
    )
    assert other.status == 409, other
    assert other.problem_code == "conflict"
    assert await figures(tenant, a) == [(7, 0, 2)]
    assert len(await movements(tenant, sku=a["sku"], reason="adjustment")) == 1


# Counts, deliveries and losses


async def test_audit_sets_restock_adds_and_loss_subtracts_with_notes(tenant: Client):
    location = await new_location(tenant)
    a = await stocked(tenant, location, 10)
    steps = [("audit", 8, "counted"), ("restock", 5, "PO-17"), ("loss", 2, "broken")]
    quantities = []
    for update_type, quantity, notes in steps:
        answer = await tenant.post(
            LEVELS,
            {
                "sku": a["sku"],
                "location_id": location,
                "quantity": quantity,
                "update_type": update_type,
                "notes": notes,
            },
        )
        assert answer.status == 200, answer
        assert answer.body["id"] == a["id"]
        quantities.append(answer.body["quantity"])
    assert quantities == [8, 13, 11]
    assert await figures(tenant, a) == [(11, 0, 4)]
    rows = await movements(tenant, sku=a["sku"])
    assert [(r["reason"], r["quantity_change"], r["quantity_after"], r["notes"]) for r in rows] == [
        ("audit", 10, 10, None),
        ("audit", -2, 8, "counted"),
        ("restock", 5, 13, "PO-17"),
        ("loss", -2, 11, "broken"),
    ]


async def test_loss_below_reserved_or_zero_is_conflict_and_changes_nothing(tenant: Client):
    location = await new_location(tenant)
    a = await stocked(tenant, location, 10)
    await reserve(tenant, location, (a["sku"], 6))
    for quantity in (5, 11):
        answer = await tenant.post(
            LEVELS,
            {"sku": a["sku"], "location_id": location, "quantity": quantity, "update_type": "loss"},
        )
        assert answer.status == 409, answer
        assert answer.problem_code == "conflict"
        assert [(e["field"], e["stock_record_id"]) for e in answer.body["errors"]] == [
            ("/quantity", a["id"])
        ]
    assert await figures(tenant, a) == [(10, 6, 2)]
    ok = await tenant.post(
        LEVELS, {"sku": a["sku"], "location_id": location, "quantity": 4, "update_type": "loss"}
    )
    assert ok.status == 200, ok
    assert (ok.body["quantity"], ok.body["reserved"], ok.body["available"]) == (6, 6, 0)


async def test_audit_of_a_pair_without_a_record_creates_it(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    answer = await tenant.post(
        LEVELS,
        {
            "sku": sku,
            "location_id": location,
            "quantity": 7,
            "update_type": "audit",
            "notes": "first count",
        },
    )
    assert answer.status == 200, answer
    assert (answer.body["sku"], answer.body["location_id"], answer.body["quantity"]) == (
        sku,
        location,
        7,
    )
    listed = await tenant.get("/stock/stock-records", sku=sku)
    assert [(r["id"], r["quantity"]) for r in listed.body["data"]] == [(answer.body["id"], 7)]
    rows = await movements(tenant, sku=sku)
    assert sum(r["quantity_change"] for r in rows) == 7
    assert rows[-1]["notes"] == "first count"


async def test_level_update_for_unknown_sku_or_location_is_a_validation_error(tenant: Client):
    location, sku = await new_location(tenant), await new_product(tenant)
    for body in (
        {"sku": ref("nope"), "location_id": location},
        {"sku": sku, "location_id": ref("nope")},
    ):
        answer = await tenant.post(LEVELS, {**body, "quantity": 3, "update_type": "restock"})
        assert answer.status == 422, answer
        assert answer.problem_code == "validation"
        assert {"/sku", "/location_id"} & set(pointers(answer))
    assert (await tenant.get("/stock/stock-records", sku=sku)).body["data"] == []
    bad = await tenant.post(
        LEVELS, {"sku": sku, "location_id": location, "quantity": -1, "update_type": "recount"}
    )
    assert bad.status == 422
    assert set(pointers(bad)) == {"/quantity", "/update_type"}


# Transfers


async def test_transfer_moves_units_between_locations_in_one_step(tenant: Client):
    source, destination = await new_location(tenant), await new_location(tenant)
    a = await stocked(tenant, source, 10)
    there = await tenant.post(
        "/stock/stock-records", {"sku": a["sku"], "location_id": destination, "quantity": 2}
    )
    answer = await tenant.post(
        "/stock/transfers",
        {
            "sku": a["sku"],
            "from_location_id": source,
            "to_location_id": destination,
            "quantity": 4,
            "notes": "rebalance",
        },
    )
    assert answer.status == 200, answer
    transfer_id = answer.body["transfer_id"]
    assert (answer.body["from"]["id"], answer.body["from"]["quantity"]) == (a["id"], 6)
    assert (answer.body["to"]["id"], answer.body["to"]["quantity"]) == (there.body["id"], 6)
    assert await figures(tenant, a, there.body) == [(6, 0, 2), (6, 0, 2)]

    rows = await movements(tenant, sku=a["sku"], reason="transfer")
    assert [(r["location_id"], r["quantity_change"], r["reference"], r["notes"]) for r in rows] == [
        (source, -4, transfer_id, "rebalance"),
        (destination, 4, transfer_id, "rebalance"),
    ]
    assert len(await movements(tenant, reference=transfer_id)) == 2


async def test_transfer_to_a_location_without_a_record_creates_it(tenant: Client):
    source, destination = await new_location(tenant), await new_location(tenant)
    a = await stocked(tenant, source, 10)
    answer = await tenant.post(
        "/stock/transfers",
        {
            "sku": a["sku"],
            "from_location_id": source,
            "to_location_id": destination,
            "quantity": 10,
        },
    )
    assert answer.status == 200, answer
    assert (answer.body["from"]["quantity"], answer.body["to"]["quantity"]) == (0, 10)
    listed = await tenant.get("/stock/stock-records", sku=a["sku"], location_id=destination)
    assert [r["quantity"] for r in listed.body["data"]] == [10]


async def test_transfer_of_more_than_available_moves_nothing(tenant: Client):
    source, destination = await new_location(tenant), await new_location(tenant)
    a = await stocked(tenant, source, 10)
    await reserve(tenant, source, (a["sku"], 7))
    for quantity in (4, 11):
        answer = await tenant.post(
            "/stock/transfers",
            {
                "sku": a["sku"],
                "from_location_id": source,
                "to_location_id": destination,
                "quantity": quantity,
            },
        )
        assert answer.status == 409, answer
        assert answer.problem_code == "conflict"
        assert [e["stock_record_id"] for e in answer.body["errors"]] == [a["id"]]
    assert await figures(tenant, a) == [(10, 7, 2)]
    there = await tenant.get("/stock/stock-records", sku=a["sku"], location_id=destination)
    assert there.body["data"] == []
    assert await movements(tenant, sku=a["sku"], reason="transfer") == []


async def test_transfer_within_one_location_is_a_validation_error(tenant: Client):
    location = await new_location(tenant)
    a = await stocked(tenant, location, 10)
    answer = await tenant.post(
        "/stock/transfers",
        {"sku": a["sku"], "from_location_id": location, "to_location_id": location, "quantity": 1},
    )
    assert answer.status == 422, answer
    assert answer.problem_code == "validation"
    assert pointers(answer) == ["/to_location_id"]
    assert await figures(tenant, a) == [(10, 0, 1)]


async def test_transfer_from_a_location_without_stock_is_conflict(tenant: Client):
    source, destination = await new_location(tenant), await new_location(tenant)
    a = await stocked(tenant, destination, 10)
    answer = await tenant.post(
        "/stock/transfers",
        {"sku": a["sku"], "from_location_id": source, "to_location_id": destination, "quantity": 1},
    )
    assert answer.status == 409, answer
    assert answer.problem_code == "conflict"
    assert await figures(tenant, a) == [(10, 0, 1)]
    there = await tenant.get("/stock/stock-records", sku=a["sku"], location_id=source)
    assert there.body["data"] == []


# The ledger and the events


@dataclass
class History:
    location: str
    other_location: str
    record: dict
    sale_id: str
    actor: str


async def busy_history(platform, tenant: Client) -> History:
    """One SKU through every kind of change, by a key whose id we know.

    At `location`: 10 created, +5 restock, 3 reserved by a sale, -2 change, set to 14,
    -1 loss, 4 transferred to `other_location`: 9 on hand and 3 reserved are left.
    """
    admin = Client(tenant.session, platform.gateway_url, platform.admin_token)
    key = await admin.post(
        f"/admin/tenants/{tenant.tenant_id}/keys",
        {"scopes": ["stock:read", "stock:write", "sales:write"]},
    )
    assert key.status == 201, key
    client = Client(tenant.session, tenant.base_url, key.body["api_key"], tenant.tenant_id)
    location, other = await new_location(client), await new_location(client)
    record = await stocked(client, location, 10, min_level=0)
    sku = record["sku"]
    level = {"sku": sku, "location_id": location}
    steps = [
        (LEVELS, {**level, "quantity": 5, "update_type": "restock"}),
        (CHANGE, {"stock_records": [{"id": record["id"], "quantity_change": -2}]}),
        (UPDATE, {"stock_records": [{"id": record["id"], "quantity": 14}]}),
        (LEVELS, {**level, "quantity": 1, "update_type": "loss"}),
        (
            "/stock/transfers",
            {"sku": sku, "from_location_id": location, "to_location_id": other, "quantity": 4},
        ),
    ]
    assert (await client.post(*steps[0])).status == 200
    sale_id = await reserve(client, location, (sku, 3))
    for path, body in steps[1:]:
        answer = await client.post(path, body)
        assert answer.status == 200, answer
    return History(location, other, record, sale_id, f"key:{key.body['id']}")


EXPECTED_AT_LOCATION = [  # reason, quantity_change, reserved_change, quantity_after, reserved_after
    ("audit", 10, 0, 10, 0),
    ("restock", 5, 0, 15, 0),
    ("reservation", 0, 3, 15, 3),
    ("adjustment", -2, 0, 13, 3),
    ("audit", 1, 0, 14, 3),
    ("loss", -1, 0, 13, 3),
    ("transfer", -4, 0, 9, 3),
]


async def test_movements_list_every_change_in_order_and_sum_to_the_record(
    platform,
    tenant: Client,
):
    h = await busy_history(platform, tenant)
    rows = await movements(tenant, sku=h.record["sku"])
    here = [r for r in rows if r["location_id"] == h.location]
    assert [
        (
            r["reason"],
            r["quantity_change"],
            r["reserved_change"],
            r["quantity_after"],
            r["reserved_after"],
        )
        for r in here
    ] == EXPECTED_AT_LOCATION
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert {r["stock_record_id"] for r in here} == {h.record["id"]}

    reservation = here[2]
    assert (reservation["actor"], reservation["reference"]) == ("stock:reservations", h.sale_id)
    assert {r["actor"] for r in rows if r["reason"] != "reservation"} == {h.actor}
    assert here[0]["reference"] == "created"
    transfer_refs = {r["reference"] for r in rows if r["reason"] == "transfer"}
    assert len(transfer_refs) == 1 and None not in transfer_refs

    assert await figures(tenant, h.record) == [(9, 3, 7)]
    assert sum(r["quantity_change"] for r in here) == 9
    assert sum(r["reserved_change"] for r in here) == 3
    there = [r for r in rows if r["location_id"] == h.other_location]
    assert [(r["reason"], r["quantity_change"], r["quantity_after"]) for r in there] == [
        ("transfer", 4, 4)
    ]


async def test_movements_filter_by_reason_and_location_and_page(platform, tenant: Client):
    h = await busy_history(platform, tenant)
    everything = await movements(tenant, sku=h.record["sku"])
    assert len(everything) == 8

    audits = await movements(tenant, sku=h.record["sku"], reason="audit")
    assert [r["quantity_change"] for r in audits] == [10, 1]
    elsewhere = await movements(tenant, location_id=h.other_location)
    assert [(r["reason"], r["quantity_change"]) for r in elsewhere] == [("transfer", 4)]
    reserved = await movements(tenant, reference=h.sale_id)
    assert [r["reason"] for r in reserved] == ["reservation"]

    pages, offset = [], 0
    while True:
        page = await tenant.get("/stock/movements", sku=h.record["sku"], limit=3, offset=offset)
        assert page.status == 200
        assert page.body["pagination"]["total_count"] == 8
        pages.append(page.body["data"])
        if 'rel="next"' not in page.headers.get("Link", ""):
            break
        offset += 3
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [r for p in pages for r in p] == everything


async def test_every_change_is_announced_as_stock_changed_on_the_broker(
    platform,
    infrastructure,
    tenant: Client,
):
    h = await busy_history(platform, tenant)
    record_id = h.record["id"]

    async def changed() -> list[dict]:
        events = await stock_events(infrastructure.bootstrap_servers, record_id)
        return [e for e in events if e["type"] == c.STOCK_CHANGED]

    events = await eventually(
        changed,
        lambda ev: len(ev) >= len(EXPECTED_AT_LOCATION),
        what="stock.changed for every ledger row",
    )
    assert [
        (
            e["data"]["reason"],
            e["data"]["quantity_change"],
            e["data"]["reserved_change"],
            e["data"]["quantity"],
            e["data"]["reserved"],
        )
        for e in events
    ] == EXPECTED_AT_LOCATION
    last = events[-1]
    assert (last["specversion"], last["source"], last["tenantid"], last["subject"]) == (
        "1.0",
        "/stock",
        tenant.tenant_id,
        f"stock-record/{record_id}",
    )
    assert (last["data"]["available"], last["data"]["sku"], last["data"]["location_id"]) == (
        6,
        h.record["sku"],
        h.location,
    )
    assert events[2]["data"]["reference"] == h.sale_id

    messages = await read_all(infrastructure.bootstrap_servers, c.STOCK_TOPIC)
    keys = {m.key for m in messages if (as_event(m) or {"data": {}})["data"].get("id") == record_id}
    assert keys == {f"{tenant.tenant_id}:stock:{h.location}:{h.record['sku']}".encode()}


async def test_refused_changes_publish_nothing(infrastructure, tenant: Client):
    location = await new_location(tenant)
    a = await stocked(tenant, location, 3)
    refused = await tenant.post(CHANGE, {"stock_records": [{"id": a["id"], "quantity_change": -4}]})
    assert refused.status == 409
    sentinel = await tenant.post(CHANGE, {"stock_records": [{"id": a["id"], "quantity_change": 1}]})
    assert sentinel.status == 200

    async def changed() -> list[dict]:
        events = await stock_events(infrastructure.bootstrap_servers, a["id"])
        return [e for e in events if e["type"] == c.STOCK_CHANGED]

    events = await eventually(
        changed,
        lambda ev: any(e["data"]["version"] == 2 for e in ev),
        what="stock.changed of the accepted change",
    )
    assert [e["data"]["quantity_change"] for e in events] == [3, 1]


async def test_stock_low_fires_once_per_fall_to_or_below_min_level(
    infrastructure,
    tenant: Client,
):
    location = await new_location(tenant)
    a = await stocked(tenant, location, 10, min_level=5)

    async def change(delta: int) -> None:
        answer = await tenant.post(
            CHANGE, {"stock_records": [{"id": a["id"], "quantity_change": delta}]}
        )
        assert answer.status == 200, answer

    await change(-4)  # 6 available: above the level
    await change(-1)  # 5: at the level, alert
    await change(-2)  # 3: still low, no second alert
    await change(+5)  # 8: above again
    await reserve(tenant, location, (a["sku"], 4))  # 4 available: low again, alert
    await change(-1)  # 7 on hand, 3 available: still low, no alert
    sentinel_version = 7

    async def events() -> list[dict]:
        return await stock_events(infrastructure.bootstrap_servers, a["id"])

    seen = await eventually(
        events,
        lambda ev: any(
            e["type"] == c.STOCK_CHANGED and e["data"]["version"] == sentinel_version for e in ev
        ),
        what="stock.changed of the last change",
    )
    lows = [e["data"] for e in seen if e["type"] == c.STOCK_LOW]
    assert [(d["available"], d["min_level"], d["version"]) for d in lows] == [(5, 5, 3), (4, 5, 6)]
    order = [(e["type"], e["data"]["version"]) for e in seen]
    assert order.index((c.STOCK_LOW, 3)) == order.index((c.STOCK_CHANGED, 3)) + 1


async def test_a_total_beyond_what_a_record_holds_is_refused_not_a_crash(tenant: Client):
    sku, location, record = await stocked_product(tenant, quantity=10)
    grow = await tenant.post(
        "/stock/stock-records/change",
        {"stock_records": [{"id": record["id"], "quantity_change": 1_999_999_990}]},
    )
    assert grow.status == 200
    overflow = await tenant.post(
        "/stock/stock-level-updates",
        {"sku": sku, "location_id": location, "quantity": 2_000_000_000, "update_type": "restock"},
    )
    assert overflow.status == 409, overflow
    assert overflow.problem_code == "conflict"


async def test_a_transfer_to_an_unknown_location_points_at_that_field(tenant: Client):
    sku, location, _ = await stocked_product(tenant, quantity=10)
    answer = await tenant.post(
        "/stock/transfers",
        {"sku": sku, "from_location_id": location, "to_location_id": ref("nowhere"), "quantity": 1},
    )
    assert answer.status == 422
    assert {e["field"] for e in answer.body["errors"]} == {"/to_location_id"}
