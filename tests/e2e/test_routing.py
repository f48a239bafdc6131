"""Routing, through the gateway: a sale without `location_id` is reserved whole at the
first location in routing order that can, else split across the fewest locations, else
backordered at the default location; `allocations` on the sale say where its units are.
Cancel releases every part; many concurrent routed sales never oversell."""

import asyncio
from typing import Any

from tests.support import Client, eventually, ref

SHOP = {"channel": "web", "shop_name": "Routing shop"}


async def location(client: Client, priority: int = 0, default: bool = False) -> str:
    code = ref("wh")
    body = {"location_id": code, "name": f"Warehouse {code}", "routing_priority": priority}
    answer = await client.post("/locations", body | ({"is_default": True} if default else {}))
    assert answer.status == 201, answer
    assert answer.body["routing_priority"] == priority
    assert answer.body["is_default"] is default
    return code


async def product(client: Client, stock: dict[str, int], **policies: Any) -> str:
    """A new product with `stock[location]` units on hand at each location."""
    sku = ref("SKU")
    created = await client.post("/products", {"sku": sku, "name": "Widget", **policies})
    assert created.status == 201, created
    for at, quantity in stock.items():
        record = {"sku": sku, "location_id": at, "quantity": quantity}
        assert (await client.post("/stock/stock-records", record)).status == 201
    return sku


def routed(*lines: tuple[str, int], **fields: Any) -> dict[str, Any]:
    return {
        "sale_id": ref("S"),
        "shop": SHOP,
        "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
        **fields,
    }


async def records(client: Client, *skus: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(location, sku) -> (quantity, reserved)."""
    found = {}
    for sku in skus:
        for r in (await client.get("/stock/stock-records", sku=sku)).body["data"]:
            found[(r["location_id"], r["sku"])] = (r["quantity"], r["reserved"])
    return found


def allocated(sale: dict[str, Any]) -> list[tuple[str, list[tuple[str, int]]]]:
    """The sale's allocations in their order, each one's lines by SKU."""
    return [
        (a["location_id"], sorted((ln["sku"], ln["quantity"]) for ln in a["lines"]))
        for a in sale["allocations"]
    ]


async def test_a_routed_sale_is_reserved_whole_at_the_first_location_in_routing_order(
    tenant: Client,
):
    far = await location(tenant, priority=5)
    near = await location(tenant, priority=1)
    also_near = await location(tenant, priority=1, default=True)
    sku = await product(tenant, {far: 10, near: 10, also_near: 10})
    answer = await tenant.post("/sales", routed((sku, 3)))
    assert answer.status == 201, answer
    sale = answer.body
    assert sale["status"] == "pending"
    assert sale["location_id"] is None
    assert sale["allow_split"] is True
    # same priority: the default first
    assert allocated(sale) == [(also_near, [(sku, 3)])]
    assert sale["reservation"]["location_id"] == also_near
    assert "other_locations" not in sale["reservation"]
    assert all("location_id" not in line for line in sale["reservation"]["lines"])
    assert sale["reservation"]["sale_version"] == 1
    fetched = (await tenant.get(f"/sales/{sale['sale_id']}")).body
    assert allocated(fetched) == allocated(sale)
    listed = (await tenant.get("/sales", status="pending")).body["data"]
    assert [allocated(s) for s in listed if s["sale_id"] == sale["sale_id"]] == [allocated(sale)]
    assert await records(tenant, sku) == {
        (far, sku): (10, 0),
        (near, sku): (10, 0),
        (also_near, sku): (10, 3),
    }
    # a sale naming a location is reserved there, as before
    named = await tenant.post("/sales", routed((sku, 2), location_id=far))
    assert named.status == 201, named
    assert named.body["location_id"] == far
    assert allocated(named.body) == [(far, [(sku, 2)])]


async def test_a_sale_no_location_can_fill_is_split_across_the_fewest(tenant: Client):
    first = await location(tenant, priority=1)
    second = await location(tenant, priority=2)
    third = await location(tenant, priority=3)
    mug = await product(tenant, {first: 2, second: 1, third: 5})
    cup = await product(tenant, {first: 4, second: 9, third: 0})
    # no location has 5 mugs and 3 cups; {first, second} has 3 mugs; {first, third} has 7
    # mugs and 4 cups ({second, third} too, but it comes later in routing order)
    answer = await tenant.post("/sales", routed((mug, 5), (cup, 3)))
    assert answer.status == 201, answer
    sale = answer.body
    assert sale["status"] == "pending"
    # the reservation is at the location holding the most units (first: 2 mugs + 3 cups)
    assert allocated(sale) == [(first, sorted([(cup, 3), (mug, 2)])), (third, [(mug, 3)])]
    reservation = sale["reservation"]
    assert reservation["location_id"] == first
    assert [p["location_id"] for p in reservation["other_locations"]] == [third]
    assert reservation["other_locations"][0]["location"]["name"] == f"Warehouse {third}"
    assert {(ln["sku"], ln.get("location_id")) for ln in reservation["lines"]} == {
        (cup, None),
        (mug, None),
        (mug, third),
    }
    assert await records(tenant, mug, cup) == {
        (first, mug): (2, 2),
        (second, mug): (1, 0),
        (third, mug): (5, 3),
        (first, cup): (4, 3),
        (second, cup): (9, 0),
        (third, cup): (0, 0),
    }
    assert (await tenant.get("/stock/integrity")).body["ok"] is True


async def test_a_sale_that_may_not_split_waits_at_the_default(tenant: Client):
    home = await location(tenant, priority=9, default=True)
    other = await location(tenant, priority=1)
    sku = await product(tenant, {home: 2, other: 2})
    answer = await tenant.post("/sales", routed((sku, 3), allow_split=False))
    assert answer.status == 228, answer
    sale = answer.body
    assert sale["status"] == "backordered"
    assert sale["allow_split"] is False
    assert sale["allocations"] == []
    assert sale["reservation"]["location_id"] == home
    assert sale["reservation"]["sale_version"] == 1
    assert [(i["sku"], i["requested"], i["available"], i["reason"]) for i in sale["issues"]] == [
        (sku, 3, 2, "insufficient_stock")
    ]
    assert await records(tenant, sku) == {(home, sku): (2, 0), (other, sku): (2, 0)}
    # split allowed, the same sale is reserved at both
    split = await tenant.post("/sales", routed((sku, 3)))
    assert split.status == 201, split
    assert allocated(split.body) == [(other, [(sku, 2)]), (home, [(sku, 1)])]
    # 3 arrive at `other`: the waiting sale is routed again, whole, there
    [record] = [
        r
        for r in (await tenant.get("/stock/stock-records", sku=sku)).body["data"]
        if r["location_id"] == other
    ]
    restock = await tenant.post(
        "/stock/stock-records/update", {"stock_records": [{"id": record["id"], "quantity": 5}]}
    )
    assert restock.status == 200, restock
    filled = await eventually(
        lambda: tenant.get(f"/sales/{sale['sale_id']}"),
        lambda a: a.body["status"] == "pending",
        what="the sale that may not split reserved whole after a restock",
    )
    assert allocated(filled.body) == [(other, [(sku, 3)])]
    assert await records(tenant, sku) == {(home, sku): (2, 1), (other, sku): (5, 5)}


async def test_a_routed_sale_short_of_a_product_that_denies_backorders_is_refused(
    tenant: Client,
):
    home = await location(tenant, priority=1, default=True)
    other = await location(tenant, priority=2)
    sku = await product(tenant, {home: 1, other: 1}, backorders="deny")
    body = routed((sku, 3))
    answer = await tenant.post("/sales", body)
    assert answer.status == 422, answer
    assert answer.body["code"] == "validation"
    assert [e["field"] for e in answer.body["errors"]] == ["/lines/0/quantity"]
    sale = (await tenant.get(f"/sales/{body['sale_id']}")).body
    assert (sale["status"], sale["cancel_reason"], sale["allocations"]) == (
        "canceled",
        "backorder_denied",
        [],
    )
    assert await records(tenant, sku) == {(home, sku): (1, 0), (other, sku): (1, 0)}
    # two units fit split: reserved at both, the policy does not stand in the way
    fits = await tenant.post("/sales", routed((sku, 2)))
    assert fits.status == 201, fits
    assert allocated(fits.body) == [(home, [(sku, 1)]), (other, [(sku, 1)])]


async def test_a_sale_short_everywhere_waits_at_the_default_and_a_restock_elsewhere_fills_it(
    tenant: Client,
):
    home = await location(tenant, priority=5, default=True)
    other = await location(tenant, priority=1)
    sku = await product(tenant, {home: 1, other: 1})
    answer = await tenant.post("/sales", routed((sku, 4)))
    assert answer.status == 228, answer
    sale = answer.body
    assert sale["status"] == "backordered"
    assert sale["reservation"]["location_id"] == home
    # split allowed: what every location together can sell
    assert [(i["requested"], i["available"]) for i in sale["issues"]] == [(4, 2)]
    [record] = [
        r
        for r in (await tenant.get("/stock/stock-records", sku=sku)).body["data"]
        if r["location_id"] == other
    ]
    restock = await tenant.post(
        "/stock/stock-records/update",
        {"stock_records": [{"id": record["id"], "quantity": 5}]},
    )
    assert restock.status in (200, 207), restock
    filled = await eventually(
        lambda: tenant.get(f"/sales/{sale['sale_id']}"),
        lambda a: a.body["status"] == "pending",
        what="the backordered routed sale reserved after a restock elsewhere",
    )
    # 4 fit at `other` alone now: no split
    assert allocated(filled.body) == [(other, [(sku, 4)])]
    assert await records(tenant, sku) == {(home, sku): (1, 0), (other, sku): (5, 4)}
    assert (await tenant.get("/stock/integrity")).body["ok"] is True


async def test_canceling_a_split_sale_releases_every_part(tenant: Client):
    first = await location(tenant, priority=1)
    second = await location(tenant, priority=2)
    sku = await product(tenant, {first: 3, second: 3})
    before = await records(tenant, sku)
    answer = await tenant.post("/sales", routed((sku, 5)))
    assert answer.status == 201, answer
    assert allocated(answer.body) == [(first, [(sku, 3)]), (second, [(sku, 2)])]
    assert await records(tenant, sku) == {(first, sku): (3, 3), (second, sku): (3, 2)}
    sale_id = answer.body["sale_id"]
    canceled = await tenant.post(
        "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
    )
    assert canceled.status == 200, canceled
    after = await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: (a.body["reservation"] or {}).get("status") == "released",
        what="the split sale's reservation released",
    )
    assert after.body["allocations"] == []
    assert await records(tenant, sku) == before
    assert (await tenant.get("/stock/integrity")).body["ok"] is True


async def test_a_routed_sale_without_any_location_is_backordered_as_unknown_location(
    tenant: Client,
):
    sku = await product(tenant, {})
    answer = await tenant.post("/sales", routed((sku, 1)))
    assert answer.status == 228, answer
    assert answer.body["status"] == "backordered"
    assert answer.body["reservation"]["location_id"] is None
    assert [(i["sku"], i["reason"]) for i in answer.body["issues"]] == [(sku, "unknown_location")]


async def test_a_routed_sale_ships_from_where_it_is_reserved(tenant: Client):
    far = await location(tenant, priority=2)
    near = await location(tenant, priority=1)
    sku = await product(tenant, {far: 5, near: 5})
    answer = await tenant.post("/sales", routed((sku, 2)))
    assert answer.status == 201, answer
    sale_id = answer.body["sale_id"]
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    assert init.status == 200, init
    [fulfillment] = init.body["fulfillments"]
    assert fulfillment["location"]["location_id"] == near


async def test_concurrent_routed_sales_never_oversell_three_locations(tenant: Client):
    places = [await location(tenant, priority=p) for p in (1, 2, 3)]
    mug = await product(tenant, {places[0]: 6, places[1]: 5, places[2]: 4})
    cup = await product(tenant, {places[0]: 3, places[1]: 8, places[2]: 5})
    wanted = [((mug, 1 + i % 3), (cup, 1 + i % 2)) for i in range(24)]

    async def sell(lines: tuple[tuple[str, int], ...], split: bool) -> str:
        body = routed(*lines, allow_split=split)
        answer = await tenant.post("/sales", body, headers={"Prefer": "respond-async"})
        assert answer.status == 202, answer
        return body["sale_id"]

    sale_ids = await asyncio.gather(*(sell(w, i % 4 != 0) for i, w in enumerate(wanted)))

    async def settled() -> list[dict[str, Any]]:
        return [(await tenant.get(f"/sales/{s}")).body for s in sale_ids]

    sales = await eventually(
        settled,
        lambda ss: all(s["status"] != "awaiting_stock" for s in ss),
        what="every routed sale settled",
    )
    stock = await records(tenant, mug, cup)
    assert all(0 <= reserved <= quantity for quantity, reserved in stock.values())
    reserved_by_key: dict[tuple[str, str], int] = {}
    for sale in sales:
        asked = {ln["sku"]: ln["quantity"] for ln in sale["lines"]}
        if sale["status"] == "pending":
            got: dict[str, int] = {}
            for place in sale["allocations"]:
                for ln in place["lines"]:
                    got[ln["sku"]] = got.get(ln["sku"], 0) + ln["quantity"]
                    key = (place["location_id"], ln["sku"])
                    reserved_by_key[key] = reserved_by_key.get(key, 0) + ln["quantity"]
            assert got == asked, sale
            if not sale["allow_split"]:
                assert len(sale["allocations"]) == 1, sale
        else:
            assert sale["status"] == "backordered", sale
            assert sale["allocations"] == []
    assert {k: v for k, v in reserved_by_key.items()} == {
        k: reserved for k, (_, reserved) in stock.items() if reserved
    }
    assert (await tenant.get("/stock/integrity")).body["ok"] is True


async def patch(client: Client, path: str, body: dict, if_match: str | None = None):
    headers = {"If-Match": if_match} if if_match is not None else None
    return await client.call("PATCH", path, json=body, headers=headers)


async def test_a_location_shows_its_routing_fields_and_one_default_at_most(tenant: Client):
    plain = ref("wh")
    created = await tenant.post("/locations", {"location_id": plain, "name": "Plain"})
    assert created.status == 201, created
    assert (created.body["is_default"], created.body["routing_priority"]) == (False, 0)
    first = await location(tenant, priority=-3, default=True)
    second = await location(tenant, priority=7)
    made_default = await patch(tenant, f"/locations/{second}", {"is_default": True})
    assert made_default.status == 200, made_default
    assert made_default.body["is_default"] is True
    assert made_default.body["routing_priority"] == 7
    assert made_default.body["version"] == 2
    # the other default stopped being one: a new version of it
    was_default = (await tenant.get(f"/locations/{first}")).body
    assert (was_default["is_default"], was_default["version"]) == (False, 2)
    assert was_default["routing_priority"] == -3
    listed = (await tenant.get("/locations", pageSize=100)).body["data"]
    assert [loc["location_id"] for loc in listed if loc["is_default"]] == [second]
    # a new default made at create unsets it too
    third = await location(tenant, default=True)
    listed = (await tenant.get("/locations", pageSize=100)).body["data"]
    assert [loc["location_id"] for loc in listed if loc["is_default"]] == [third]
    # priority alone changes nothing else
    moved = await patch(tenant, f"/locations/{plain}", {"routing_priority": 2})
    assert (moved.body["routing_priority"], moved.body["is_default"]) == (2, False)
    unset = await patch(tenant, f"/locations/{third}", {"is_default": False})
    assert unset.body["is_default"] is False
    listed = (await tenant.get("/locations", pageSize=100)).body["data"]
    assert [loc for loc in listed if loc["is_default"]] == []


async def test_a_stale_default_change_is_conflict_and_leaves_the_old_default(tenant: Client):
    old = await location(tenant, default=True)
    other = await location(tenant)
    assert (await patch(tenant, f"/locations/{other}", {"name": "Renamed"})).status == 200
    stale = await patch(tenant, f"/locations/{other}", {"is_default": True}, if_match='"1"')
    assert stale.status == 409, stale
    assert stale.problem_code == "conflict"
    assert (await tenant.get(f"/locations/{old}")).body["is_default"] is True
    assert (await tenant.get(f"/locations/{other}")).body["is_default"] is False


async def test_concurrent_defaults_leave_exactly_one(tenant: Client):
    places = [await location(tenant) for _ in range(6)]
    answers = await asyncio.gather(
        *(patch(tenant, f"/locations/{p}", {"is_default": True}) for p in places)
    )
    assert all(a.status == 200 for a in answers), answers
    listed = (await tenant.get("/locations", pageSize=100)).body["data"]
    assert len([loc for loc in listed if loc["is_default"]]) == 1


async def test_invalid_routing_fields_are_422_with_pointers(tenant: Client):
    answer = await tenant.post(
        "/locations",
        {"location_id": ref("wh"), "name": "X", "is_default": "yes", "routing_priority": 1.5},
    )
    assert answer.status == 422, answer
    assert {e["field"] for e in answer.body["errors"]} == {"/is_default", "/routing_priority"}
    code = await location(tenant)
    nulls = await patch(
        tenant, f"/locations/{code}", {"is_default": None, "routing_priority": 10**7}
    )
    assert nulls.status == 422, nulls
    assert {e["field"] for e in nulls.body["errors"]} == {"/is_default", "/routing_priority"}
    sale = await tenant.post("/sales", routed(("X", 1), allow_split="no"))
    assert sale.status == 422, sale
    assert {e["field"] for e in sale.body["errors"]} == {"/allow_split"}


async def test_routed_split_and_single_sales_and_cancels_race_without_overselling(
    tenant: Client,
):
    """Routed sales (split or not), sales naming a location and cancels of some of them, all
    at once over three locations: no record below zero or above its quantity, the ledger
    and the reservations agree, and each pending sale's allocations are its lines."""
    places = [await location(tenant, priority=p) for p in (1, 2, 3)]
    mug = await product(tenant, {places[0]: 7, places[1]: 5, places[2]: 6})
    cup = await product(tenant, {places[0]: 4, places[1]: 9, places[2]: 3})
    bodies = []
    for i in range(30):
        lines = ((mug, 1 + i % 3), (cup, 1 + i % 2))
        at = {"location_id": places[i % 3]} if i % 5 == 0 else {}
        bodies.append(routed(*lines, allow_split=i % 4 != 0, **at))

    async def sell(body: dict[str, Any]) -> None:
        answer = await tenant.post("/sales", body, headers={"Prefer": "respond-async"})
        assert answer.status == 202, answer

    async def cancel(body: dict[str, Any]) -> None:
        await sell(body)
        answer = await tenant.post(
            "/sales/cancel", {"sale_id": body["sale_id"], "cancel_reason": "other"}
        )
        assert answer.status == 200, answer

    await asyncio.gather(*(cancel(b) if i % 6 == 5 else sell(b) for i, b in enumerate(bodies)))

    Snapshot = tuple[list[dict[str, Any]], dict[tuple[str, str], tuple[int, int]]]

    async def settled() -> Snapshot:
        sales = [(await tenant.get(f"/sales/{b['sale_id']}")).body for b in bodies]
        return sales, await records(tenant, mug, cup)

    def held_by(sales: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
        held: dict[tuple[str, str], int] = {}
        for sale in sales:
            for place in sale["allocations"] if sale["status"] == "pending" else []:
                for ln in place["lines"]:
                    key = (place["location_id"], ln["sku"])
                    held[key] = held.get(key, 0) + ln["quantity"]
        return held

    def done(snapshot: Snapshot) -> bool:
        """Every sale settled, cancels released, and what pending sales hold is what stock
        has reserved: a cancel's release may still be re-routing a backordered sale (stock
        reserved it, orders has not heard yet), so only a snapshot where both agree is final.
        A leaked or doubled reservation never agrees, and the wait fails."""
        sales, stock = snapshot
        return all(
            s["status"] in ("pending", "backordered")
            or (s["status"] == "canceled" and (s["reservation"] or {}).get("status") != "active")
            for s in sales
        ) and held_by(sales) == {k: reserved for k, (_, reserved) in stock.items() if reserved}

    sales, stock = await eventually(
        settled, done, what="every sale settled, and pending sales holding what stock reserved"
    )
    assert all(0 <= reserved <= quantity for quantity, reserved in stock.values()), stock
    for sale in sales:
        if sale["status"] != "pending":
            assert sale["allocations"] == [], sale
            continue
        got: dict[str, int] = {}
        for place in sale["allocations"]:
            for ln in place["lines"]:
                got[ln["sku"]] = got.get(ln["sku"], 0) + ln["quantity"]
        assert got == {ln["sku"]: ln["quantity"] for ln in sale["lines"]}, sale
        if sale["location_id"] is not None:
            assert [a["location_id"] for a in sale["allocations"]] == [sale["location_id"]]
        elif not sale["allow_split"]:
            assert len(sale["allocations"]) == 1, sale
    assert (await tenant.get("/stock/integrity")).body["ok"] is True


async def test_a_sale_whose_lines_are_each_at_one_location_only_is_split(tenant: Client):
    first = await location(tenant, priority=0)
    second = await location(tenant, priority=1)
    here = await product(tenant, {first: 7})
    there = await product(tenant, {second: 4})
    answers = await asyncio.gather(
        tenant.post("/sales", routed((here, 1), (there, 1))),
        tenant.post(
            "/sales/batch",
            {
                "sales": [
                    routed((here, 1), (there, 1)) if i % 2 else routed((here, 1), location_id=first)
                    for i in range(6)
                ]
            },
        ),
    )
    assert answers[0].status == 201, answers[0]
    for sale in [answers[0].body, *answers[1].body["sales"]]:
        if sale["location_id"] is None:
            assert allocated(sale) == [(first, [(here, 1)]), (second, [(there, 1)])], sale
        else:
            assert allocated(sale) == [(first, [(here, 1)])], sale
