"""Stock counts on either basis (on hand or available) and the ETags of products, locations
and stock records, through the gateway."""

from typing import Any

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Answer, Client, ref

UPDATE = "/stock/stock-records/update"
LEVELS = "/stock/stock-level-updates"


async def reserved_record(client: Client, stock: int, reserve: int) -> tuple[str, str, dict]:
    """A record with `stock` on hand and an open reservation of `reserve` (a pending sale)."""
    sku, location, record = await stocked_product(client, quantity=stock)
    created = await client.post("/sales", sale_body(ref("S"), location, (sku, reserve)))
    assert created.body["status"] == "pending", created
    got = await client.get(f"/stock/stock-records/{record['id']}")
    assert figures(got.body) == (stock, reserve, stock - reserve)
    return sku, location, got.body


def figures(record: dict[str, Any]) -> tuple[int, int, int]:
    return record["quantity"], record["reserved"], record["available"]


def pointers(answer: Answer) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in answer.body["errors"]]


async def test_an_available_count_adds_the_open_reservations(tenant: Client):
    _, _, record = await reserved_record(tenant, stock=10, reserve=3)
    answer = await tenant.post(
        UPDATE,
        {
            "stock_records": [{"id": record["id"], "quantity": 5}],
            "quantity_basis": "available",
            "notes": "WMS sync",
        },
    )
    assert answer.status == 200, answer
    [updated] = answer.body["stock_records"]
    assert figures(updated) == (8, 3, 5), "on hand = the 5 available + the 3 reserved"
    assert updated["version"] == record["version"] + 1
    assert answer.headers["ETag"] == f'"{updated["version"]}"'

    [audit] = (
        await tenant.get("/stock/movements", sku=record["sku"], reason="audit", offset=1)
    ).body["data"]
    assert (audit["quantity_change"], audit["reserved_change"]) == (-2, 0)
    assert (audit["quantity_after"], audit["reserved_after"], audit["notes"]) == (8, 3, "WMS sync")

    # On hand stays the default basis: the same 5 now means 5 on hand, 2 available.
    default = await tenant.post(UPDATE, {"stock_records": [{"id": record["id"], "quantity": 5}]})
    assert default.status == 200, default
    assert figures(default.body["stock_records"][0]) == (5, 3, 2)


async def test_compare_quantity_is_read_on_the_basis_given(tenant: Client):
    _, _, record = await reserved_record(tenant, stock=10, reserve=4)
    body = {
        "stock_records": [{"id": record["id"], "quantity": 1, "compare_quantity": 10}],
        "quantity_basis": "available",
    }
    stale = await tenant.post(UPDATE, body)
    assert (stale.status, stale.problem_code) == (409, "conflict"), stale
    assert pointers(stale) == [("/stock_records/0/compare_quantity", "available is now 6")]

    body["stock_records"][0]["compare_quantity"] = 6
    fresh = await tenant.post(UPDATE, body)
    assert fresh.status == 200, fresh
    assert figures(fresh.body["stock_records"][0]) == (5, 4, 1)

    on_hand = await tenant.post(
        UPDATE, {"stock_records": [{"id": record["id"], "quantity": 9, "compare_quantity": 1}]}
    )
    assert (on_hand.status, pointers(on_hand)) == (
        409,
        [("/stock_records/0/compare_quantity", "on hand is now 5")],
    )


async def test_a_level_update_counts_available_units(tenant: Client):
    sku, location, record = await reserved_record(tenant, stock=10, reserve=2)
    count = {"sku": sku, "location_id": location, "update_type": "audit", "quantity": 4}
    answer = await tenant.post(LEVELS, {**count, "quantity_basis": "available"})
    assert answer.status == 200, answer
    assert figures(answer.body) == (6, 2, 4)
    assert answer.headers["ETag"] == f'"{answer.body["version"]}"'

    # A restock adds to on hand and available alike, whatever the basis says.
    restock = {**count, "update_type": "restock", "quantity": 3, "quantity_basis": "available"}
    restocked = await tenant.post(LEVELS, restock)
    assert figures(restocked.body) == (9, 2, 7)

    # Counted below zero available is refused: there is no basis for a negative count.
    negative = await tenant.post(LEVELS, {**count, "quantity": -1, "quantity_basis": "available"})
    assert negative.status == 422 and negative.body["errors"][0]["field"] == "/quantity"
    after = await tenant.get(f"/stock/stock-records/{record['id']}")
    assert figures(after.body) == (9, 2, 7)


async def test_an_unknown_basis_is_refused_with_a_pointer(tenant: Client):
    _, _, record = await reserved_record(tenant, stock=10, reserve=1)
    batch = await tenant.post(
        UPDATE,
        {"stock_records": [{"id": record["id"], "quantity": 1}], "quantity_basis": "free"},
    )
    assert (batch.status, batch.problem_code) == (422, "validation"), batch
    assert [e["field"] for e in batch.body["errors"]] == ["/quantity_basis"]
    single = await tenant.post(
        LEVELS,
        {
            "sku": record["sku"],
            "location_id": record["location_id"],
            "update_type": "audit",
            "quantity": 1,
            "quantity_basis": "on-hand",
        },
    )
    assert [e["field"] for e in single.body["errors"]] == ["/quantity_basis"]
    after = await tenant.get(f"/stock/stock-records/{record['id']}")
    assert figures(after.body) == (10, 1, 9)


async def test_products_and_locations_send_the_etag_if_match_takes(tenant: Client):
    sku, location = ref("SKU"), ref("wh")
    for path, body, key, field in (
        ("/products", {"sku": sku, "name": "Mug"}, sku, "name"),
        ("/locations", {"location_id": location, "name": "Main"}, location, "name"),
    ):
        created = await tenant.post(path, body)
        assert (created.status, created.headers["ETag"]) == (201, '"1"'), created
        got = await tenant.get(f"{path}/{key}")
        assert (got.status, got.headers["ETag"]) == (200, '"1"')
        head = await tenant.call("HEAD", f"{path}/{key}")
        assert head.headers["ETag"] == '"1"'

        first = await tenant.call(
            "PATCH",
            f"{path}/{key}",
            json={field: "First"},
            headers={"If-Match": got.headers["ETag"]},
        )
        assert (first.status, first.headers["ETag"], first.body["version"]) == (200, '"2"', 2)
        # A writer still holding the first ETag is refused: it has not seen the change.
        stale = await tenant.call(
            "PATCH",
            f"{path}/{key}",
            json={field: "Stale"},
            headers={"If-Match": got.headers["ETag"]},
        )
        assert (stale.status, stale.problem_code) == (409, "conflict"), stale
        assert "ETag" not in stale.headers
        assert (await tenant.get(f"{path}/{key}")).body[field] == "First"
        again = await tenant.call(
            "PATCH",
            f"{path}/{key}",
            json={field: "Second"},
            headers={"If-Match": first.headers["ETag"]},
        )
        assert (again.status, again.headers["ETag"]) == (200, '"3"'), again

    missing = await tenant.get(f"/products/{ref('SKU')}")
    assert missing.status == 404 and "ETag" not in missing.headers
    listed = await tenant.get("/products")
    assert "ETag" not in listed.headers, "a list has no single version"


async def test_stock_records_send_the_etag_if_match_takes(tenant: Client):
    sku, location, record = await stocked_product(tenant, quantity=10)
    other_sku, _, other = await stocked_product(tenant, quantity=5)
    path = f"/stock/stock-records/{record['id']}"
    got = await tenant.get(path)
    assert got.headers["ETag"] == f'"{got.body["version"]}"' == '"1"'

    body = {"stock_records": [{"id": record["id"], "quantity": 7}]}
    first = await tenant.post(UPDATE, body, headers={"If-Match": got.headers["ETag"]})
    assert first.status == 200, first
    assert first.headers["ETag"] == '"2"' == f'"{first.body["stock_records"][0]["version"]}"'

    stale = await tenant.post(
        UPDATE,
        {"stock_records": [{"id": record["id"], "quantity": 1}]},
        headers={"If-Match": got.headers["ETag"]},
    )
    assert (stale.status, stale.problem_code) == (409, "conflict"), stale
    assert pointers(stale) == [("/stock_records/0/version", "version is now 2")]
    assert figures((await tenant.get(path)).body) == (7, 0, 7)

    level = await tenant.post(
        LEVELS, {"sku": sku, "location_id": location, "update_type": "loss", "quantity": 2}
    )
    assert (level.status, level.headers["ETag"]) == (200, '"3"'), level
    fresh = await tenant.post(UPDATE, body, headers={"If-Match": level.headers["ETag"]})
    assert (fresh.status, fresh.headers["ETag"]) == (200, '"4"'), fresh

    both = await tenant.post(
        UPDATE,
        {
            "stock_records": [
                {"id": record["id"], "quantity": 1},
                {"id": other["id"], "quantity": 1},
            ]
        },
    )
    assert both.status == 200 and "ETag" not in both.headers, "several records, no one version"
    created = await tenant.post(
        "/stock/stock-records", {"sku": other_sku, "location_id": location, "quantity": 3}
    )
    assert (created.status, created.headers["ETag"]) == (201, '"1"'), created
