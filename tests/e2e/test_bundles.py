"""Bundles through the gateway: components checked (422 with pointers, cycles), a bundle
sale reserving its components all or none (228 naming the bundle line), cancel and ship,
what a bundle can sell (derived, on the product and the stock records), builds of an
assembled bundle both ways, and many clients racing for one hot component shared by
several bundles and sold on its own: never oversold, integrity clean."""

import asyncio
from typing import Any

from tests.support import Client, eventually, ref

SHOP = {"channel": "web", "shop_name": "Kit shop"}


async def location(client: Client) -> str:
    code = ref("wh")
    answer = await client.post("/locations", {"location_id": code, "name": "Warehouse"})
    assert answer.status == 201, answer
    return code


async def product(client: Client, at: str | None = None, quantity: int = 0, **fields: Any) -> str:
    sku = ref("SKU")
    created = await client.post("/products", {"sku": sku, "name": "Part", **fields})
    assert created.status == 201, created
    if at is not None:
        record = {"sku": sku, "location_id": at, "quantity": quantity}
        assert (await client.post("/stock/stock-records", record)).status == 201
    return sku


async def bundle(client: Client, *parts: tuple[str, int], **fields: Any) -> str:
    components = [{"sku": s, "quantity": q} for s, q in parts]
    return await product(client, components=components, **fields)


def sale(at: str, *lines: tuple[str, int]) -> dict[str, Any]:
    return {
        "sale_id": ref("S"),
        "shop": SHOP,
        "location_id": at,
        "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
    }


async def record_of(client: Client, sku: str, at: str) -> dict[str, Any]:
    rows = (await client.get("/stock/stock-records", sku=sku, location_id=at)).body["data"]
    [row] = rows
    return row


async def clean(client: Client) -> None:
    check = await client.get("/stock/integrity")
    assert check.status == 200, check
    assert (check.body["ok"], check.body["discrepancies"]) == (True, []), check.body


async def test_a_bundle_shows_its_components_and_refuses_bad_ones_with_pointers(tenant: Client):
    a, b = await product(tenant), await product(tenant)
    kit = ref("KIT")
    sent = {
        "sku": kit,
        "name": "Kit",
        "components": [{"sku": a, "quantity": 2}, {"sku": b, "quantity": 1}],
    }
    created = await tenant.post("/products", sent)
    assert created.status == 201, created
    fetched = await tenant.get(f"/products/{kit}")
    for body in (created.body, fetched.body):
        assert body["components"] == [{"sku": a, "quantity": 2}, {"sku": b, "quantity": 1}]
        assert body["assembled"] is False
    plain = (await tenant.get(f"/products/{a}")).body
    assert (plain["components"], plain["assembled"]) == (None, False)
    assert "derived" not in plain["stock_level"]

    missing = ref("NOPE")
    bad = await tenant.post(
        "/products",
        {
            "sku": (other := ref("KIT")),
            "name": "Bad kit",
            "components": [
                {"sku": a, "quantity": 1},
                {"sku": missing, "quantity": 1},
                {"sku": other, "quantity": 1},
                {"sku": a, "quantity": 3},
            ],
        },
    )
    assert bad.status == 422, bad
    assert bad.problem_code == "validation"
    assert bad.body["errors"] == [
        {"field": "/components/1/sku", "message": f"no product with sku {missing!r}"},
        {"field": "/components/2/sku", "message": "a bundle cannot contain itself"},
        {"field": "/components/3/sku", "message": f"{a!r} is named twice: give its quantity once"},
    ]
    assert (await tenant.get(f"/products/{other}")).status == 404

    shape = await tenant.post(
        "/products",
        {"sku": ref("KIT"), "name": "K", "components": [{"sku": a, "quantity": 0}]},
    )
    assert shape.status == 422, shape
    assert [e["field"] for e in shape.body["errors"]] == ["/components/0/quantity"]
    empty = await tenant.post("/products", {"sku": ref("KIT"), "name": "K", "components": []})
    assert empty.status == 422, empty
    assert [e["field"] for e in empty.body["errors"]] == ["/components"]
    unsaid = await tenant.call("PATCH", f"/products/{a}", json={"components": [{"sku": b}]})
    assert unsaid.status == 422, unsaid
    assert [e["field"] for e in unsaid.body["errors"]] == ["/components/0/quantity"]


async def test_a_cycle_is_422_at_any_depth(tenant: Client):
    a = await product(tenant)
    inner = await bundle(tenant, (a, 1))
    outer = await bundle(tenant, (inner, 2))
    cycle = await tenant.call(
        "PATCH", f"/products/{a}", json={"components": [{"sku": outer, "quantity": 1}]}
    )
    assert cycle.status == 422, cycle
    assert cycle.body["errors"] == [
        {
            "field": "/components/0/sku",
            "message": f"{outer!r} contains {a!r}: bundles cannot form a cycle",
        }
    ]
    assert (await tenant.get(f"/products/{a}")).body["components"] is None


async def test_a_bundle_sale_reserves_its_components_and_cancel_releases_them(tenant: Client):
    at = await location(tenant)
    a, b = await product(tenant, at, 10), await product(tenant, at, 4)
    kit = await bundle(tenant, (a, 2), (b, 1))
    sent = sale(at, (kit, 3), (a, 1))
    answer = await tenant.post("/sales", sent)
    assert answer.status == 201, answer
    assert answer.body["issues"] == []
    assert [(ln["sku"], ln["quantity"]) for ln in answer.body["lines"]] == [(kit, 3), (a, 1)]
    reserved = sorted((ln["sku"], ln["quantity"]) for ln in answer.body["reservation"]["lines"])
    assert reserved == sorted([(a, 7), (b, 3)])
    assert (
        (await record_of(tenant, a, at))["reserved"],
        (await record_of(tenant, b, at))["reserved"],
    ) == (7, 3)
    moves = (await tenant.get("/stock/movements", reference=sent["sale_id"])).body["data"]
    assert sorted((m["sku"], m["reason"], m["reserved_change"]) for m in moves) == sorted(
        [(a, "reservation", 7), (b, "reservation", 3)]
    )

    cancel = {"sale_id": sent["sale_id"], "cancel_reason": "customer_request"}
    assert (await tenant.post("/sales/cancel", cancel)).status == 200
    await eventually(
        lambda: record_of(tenant, a, at),
        lambda r: r["reserved"] == 0,
        what="the components released",
    )
    assert (await record_of(tenant, b, at))["reserved"] == 0
    await clean(tenant)


async def test_a_short_component_is_228_naming_the_bundle_line_and_reserves_nothing(
    tenant: Client,
):
    at = await location(tenant)
    a, b = await product(tenant, at, 7), await product(tenant, at, 10)
    kit = await bundle(tenant, (a, 2), (b, 1))
    answer = await tenant.post("/sales", sale(at, (kit, 5), (b, 2)))
    assert answer.status == 228, answer
    assert answer.body["status"] == "backordered"
    assert answer.body["issues"] == [
        {"sku": kit, "requested": 5, "available": 3, "reason": "insufficient_stock"}
    ]
    for sku in (a, b):
        assert (await record_of(tenant, sku, at))["reserved"] == 0, "never half a kit"
    # the missing units arrive: the waiting sale takes its components
    restock = {"sku": a, "location_id": at, "quantity": 3, "update_type": "restock"}
    assert (await tenant.post("/stock/stock-level-updates", restock)).status == 200
    await eventually(
        lambda: record_of(tenant, a, at),
        lambda r: r["reserved"] == 10,
        what="the backordered bundle sale reserved",
    )
    assert (await record_of(tenant, b, at))["reserved"] == 7
    await clean(tenant)


async def test_shipping_a_bundle_sale_commits_its_components(tenant: Client):
    at = await location(tenant)
    a, b = await product(tenant, at, 5), await product(tenant, at, 5)
    kit = await bundle(tenant, (a, 2), (b, 1))
    sent = sale(at, (kit, 2))
    assert (await tenant.post("/sales", sent)).status == 201
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sent["sale_id"]]})
    assert init.status == 200, init
    [fulfillment] = init.body["fulfillments"]
    shipped = await tenant.post(
        f"/fulfillment/fulfillments/{fulfillment['id']}/status", {"status": "shipped"}
    )
    assert shipped.status == 200, shipped
    final = await eventually(
        lambda: record_of(tenant, a, at),
        lambda r: r["quantity"] == 1,
        what="the components committed",
    )
    assert (final["reserved"], final["quantity"]) == (0, 1)
    other = await record_of(tenant, b, at)
    assert (other["reserved"], other["quantity"]) == (0, 3)
    moves = (await tenant.get("/stock/movements", reference=sent["sale_id"], reason="commit")).body
    assert sorted((m["sku"], m["quantity_change"]) for m in moves["data"]) == sorted(
        [(a, -4), (b, -2)]
    )
    await clean(tenant)


async def test_a_bundle_shows_what_its_components_can_make_derived(tenant: Client):
    north, south = await location(tenant), await location(tenant)
    a, b = await product(tenant, north, 7), await product(tenant, north, 10)
    record = {"sku": a, "location_id": south, "quantity": 4}
    assert (await tenant.post("/stock/stock-records", record)).status == 201
    kit = await bundle(tenant, (a, 2), (b, 1))
    view = (await tenant.get(f"/products/{kit}")).body
    assert view["location_stock_levels"] == [
        {
            "location_id": loc,
            "quantity": n,
            "reserved": 0,
            "available": n,
            "sellable": n,
            "derived": True,
        }
        for loc, n in sorted([(north, 3), (south, 0)])
    ]
    assert view["stock_level"] == {
        "quantity": 3,
        "reserved": 0,
        "available": 3,
        "sellable": 3,
        "derived": True,
    }
    rows = (await tenant.get("/stock/stock-records", sku=[kit, b])).body
    assert rows["pagination"]["total_count"] == 3
    real, *derived = rows["data"]
    assert real["sku"] == b and "derived" not in real  # a record is never marked
    assert derived == [
        {
            "id": None,
            "location_id": loc,
            "sku": kit,
            "quantity": n,
            "reserved": 0,
            "available": n,
            "sellable": n,
            "incoming": 0,
            "version": None,
            "updated_at": None,
            "derived": True,
        }
        for loc, n in sorted([(north, 3), (south, 0)])
    ]
    # a sale of components lowers what the bundle can make
    assert (await tenant.post("/sales", sale(north, (a, 3)))).status == 201
    view = (await tenant.get(f"/products/{kit}")).body
    assert view["stock_level"]["available"] == 2


async def test_builds_turn_components_into_an_assembled_bundle_and_back(tenant: Client):
    at = await location(tenant)
    a, b = await product(tenant, at, 10), await product(tenant, at, 3)
    kit = await bundle(tenant, (a, 2), (b, 1), assembled=True)
    body = {"sku": kit, "location_id": at, "quantity": 2}
    key = {"Idempotency-Key": ref("build")}
    built = await tenant.post("/stock/builds", body, headers=key)
    assert built.status == 200, built
    again = await tenant.post("/stock/builds", body, headers=key)
    assert (again.status, again.body) == (200, built.body)
    assert again.headers.get("Idempotent-Replayed") == "true"
    out = built.body
    assert (out["sku"], out["location_id"], out["quantity"]) == (kit, at, 2)
    assert out["build_id"].startswith("build:")
    assert (out["bundle"]["sku"], out["bundle"]["quantity"], out["bundle"]["reserved"]) == (
        kit,
        2,
        0,
    )
    assert sorted((r["sku"], r["quantity"]) for r in out["components"]) == sorted([(a, 6), (b, 1)])
    moves = (await tenant.get("/stock/movements", reference=out["build_id"])).body["data"]
    assert sorted((m["sku"], m["reason"], m["quantity_change"]) for m in moves) == sorted(
        [(a, "build", -4), (b, "build", -2), (kit, "build", 2)]
    )

    # an assembled bundle is reserved like any product: its own record
    assert (await tenant.post("/sales", sale(at, (kit, 1)))).status == 201
    assert (await record_of(tenant, kit, at))["reserved"] == 1
    assert (await record_of(tenant, a, at))["reserved"] == 0

    short = await tenant.post("/stock/builds", {"sku": kit, "location_id": at, "quantity": 2})
    assert short.status == 409, short
    assert short.problem_code == "conflict"
    assert [e["field"] for e in short.body["errors"]] == [f"/components/{b}"]
    apart = await tenant.post("/stock/builds", {"sku": kit, "location_id": at, "quantity": -1})
    assert apart.status == 200, apart
    assert apart.body["bundle"]["quantity"] == 1
    assert sorted((r["sku"], r["quantity"]) for r in apart.body["components"]) == sorted(
        [(a, 8), (b, 2)]
    )
    # the last unit is reserved: it cannot be taken apart
    held = await tenant.post("/stock/builds", {"sku": kit, "location_id": at, "quantity": -1})
    assert held.status == 409, held
    assert [e["field"] for e in held.body["errors"]] == ["/quantity"]
    await clean(tenant)

    plain = await bundle(tenant, (a, 1))
    refused = await tenant.post("/stock/builds", {"sku": plain, "location_id": at, "quantity": 1})
    assert refused.status == 422, refused
    assert refused.body["errors"] == [{"field": "/sku", "message": "not an assembled bundle"}]
    zero = await tenant.post("/stock/builds", {"sku": kit, "location_id": at, "quantity": 0})
    assert zero.status == 422, zero
    assert [e["field"] for e in zero.body["errors"]] == ["/quantity"]
    nowhere = await tenant.post(
        "/stock/builds", {"sku": kit, "location_id": ref("wh"), "quantity": 1}
    )
    assert nowhere.status == 422, nowhere
    assert [e["field"] for e in nowhere.body["errors"]] == ["/location_id"]
    # with stock, its components no longer change
    change = await tenant.call(
        "PATCH", f"/products/{kit}", json={"components": [{"sku": a, "quantity": 1}]}
    )
    assert change.status == 409, change


SALES, CLIENTS, HOT_UNITS = 300, 24, 200


async def test_many_clients_racing_for_a_hot_component_never_oversell_it(tenant: Client):
    """One hot component in two bundles (one of them twice over) and sold on its own too;
    each sale asks for one line of one of the three."""
    at = await location(tenant)
    hot = await product(tenant, at, HOT_UNITS)
    side = await product(tenant, at, 10_000)
    single = await bundle(tenant, (hot, 1), (side, 1))
    double = await bundle(tenant, (hot, 2), (side, 3))
    kinds = [(hot, 1), (single, 1), (double, 1)]
    need = {hot: {hot: 1}, single: {hot: 1, side: 1}, double: {hot: 2, side: 3}}
    sales = [sale(at, kinds[i % 3]) for i in range(SALES)]
    queue = iter(sales)
    answers: dict[str, int] = {}
    issues: list[tuple[str, list[str]]] = []
    samples: list[tuple[int, int]] = []
    racing = True

    async def sell() -> None:
        for sent in queue:
            answer = await tenant.post("/sales", sent)
            assert answer.status in (201, 228), answer
            answers[sent["sale_id"]] = answer.status
            if answer.status == 228:  # the issue names the line as sent, bundle or not
                issues.append((sent["lines"][0]["sku"], [i["sku"] for i in answer.body["issues"]]))

    async def sample() -> None:
        while racing:
            now = await record_of(tenant, hot, at)
            samples.append((now["reserved"], now["quantity"]))

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(sell() for _ in range(CLIENTS)))
    racing = False
    await sampler

    reserved = {hot: 0, side: 0}
    for sent in sales:
        if answers[sent["sale_id"]] == 201:
            [(sku, quantity)] = [(ln["sku"], ln["quantity"]) for ln in sent["lines"]]
            for part, each in need[sku].items():
                reserved[part] += each * quantity
    final_hot, final_side = await record_of(tenant, hot, at), await record_of(tenant, side, at)
    assert final_hot["reserved"] == reserved[hot] <= HOT_UNITS
    assert final_side["reserved"] == reserved[side]
    assert samples and all(0 <= r <= q for r, q in samples)
    assert issues and all([line] == named for line, named in issues)
    await clean(tenant)
