"""Shipping a split sale, through the gateway: one fulfillment per location its reservation
holds units at, each shipped on its own; the sale is shipped with its last part, delivered
with its last fulfillment, and cannot be canceled once any part has shipped. Shipping init
repeated or concurrent, a cancel racing the parts' shipments, and fulfilment dying after
the claim all end with exactly one fulfillment per part."""

import asyncio
import json
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg

from deploy.local.services import Platform
from tests.e2e.test_sales_failures import dies_on, extra_process, internal_headers
from tests.e2e.test_shipping_labels import label, page_lines
from tests.support import Answer, Client, eventually, ref

SHOP = {"channel": "web", "shop_name": "Split shop"}


async def location(client: Client, priority: int) -> str:
    code = ref("wh")
    body = {"location_id": code, "name": f"Warehouse {code}", "routing_priority": priority}
    answer = await client.post("/locations", body)
    assert answer.status == 201, answer
    return code


async def product(client: Client, at: str, quantity: int, bulky: bool = False) -> str:
    """A new product with `quantity` units at one location only."""
    sku = ref("SKU")
    created = await client.post("/products", {"sku": sku, "name": "Part", "is_bulky": bulky})
    assert created.status == 201, created
    record = {"sku": sku, "location_id": at, "quantity": quantity}
    assert (await client.post("/stock/stock-records", record)).status == 201
    return sku


async def two_places(client: Client, stock: int) -> tuple[str, str, str, str]:
    """Two locations and two products, each at one of them only: a sale of both products
    can only be split, its reservation at `near` (listed first in routing order, holding as
    many units) with a part at `far`. The product at `far` is bulky."""
    near, far = await location(client, 1), await location(client, 2)
    mug = await product(client, near, stock)
    crate = await product(client, far, stock, bulky=True)
    return near, far, mug, crate


def routed(*lines: tuple[str, int]) -> dict[str, Any]:
    return {
        "sale_id": ref("S"),
        "shop": SHOP,
        "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
        "customer": {"name": "Ada"},
        "shipping_address": {"name": "Ada", "city": "Oslo", "country": "NO"},
    }


async def records(client: Client, *skus: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(location, sku) -> (quantity, reserved)."""
    found = {}
    for sku in skus:
        for r in (await client.get("/stock/stock-records", sku=sku)).body["data"]:
            found[(r["location_id"], r["sku"])] = (r["quantity"], r["reserved"])
    return found


async def split_sale(client: Client, mug: str, crate: str) -> str:
    answer = await client.post("/sales", routed((mug, 1), (crate, 1)))
    assert (answer.status, answer.body["status"]) == (201, "pending"), answer
    assert len(answer.body["allocations"]) == 2, answer
    return answer.body["sale_id"]


async def fulfillment_rows(
    db: asyncpg.Connection, tenant: Client, sale_id: str
) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, location, status FROM fulfilment.fulfillments"
        " WHERE tenant_id = $1 AND sale_id = $2 ORDER BY part",
        uuid.UUID(tenant.tenant_id),
        sale_id,
    )


async def test_a_split_sale_ships_part_by_part_and_is_delivered_with_its_last_part(
    tenant: Client,
):
    near, far, mug, crate = await two_places(tenant, stock=5)
    answer = await tenant.post("/sales", routed((mug, 3), (crate, 1)))
    assert answer.status == 201, answer
    sale_id = answer.body["sale_id"]
    assert [a["location_id"] for a in answer.body["allocations"]] == [near, far]
    assert answer.body["shipped_parts"] == []

    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})

    assert init.status == 200, init
    assert init.body["errors"] == []
    here, there = init.body["fulfillments"]
    assert [f["location"] for f in (here, there)] == [
        {"name": f"Warehouse {near}", "location_id": near},
        {"name": f"Warehouse {far}", "location_id": far},
    ]
    assert [(f["sale_id"], f["status"], f["is_bulky"]) for f in (here, there)] == [
        (sale_id, "waiting_for_picking", False),
        (sale_id, "waiting_for_picking", True),
    ]
    assert here["tracking_number"] != there["tracking_number"]
    assert here["fulfillment_id"] != there["fulfillment_id"]
    for f in (here, there):
        assert f["shipping_provider"]["shipping_provider_id"] == "fulfil-post"
        status, _, pdf = await label(tenant, f["id"])
        assert status == 200
        # each part's label is sent from its own location
        assert f["location"]["name"] in page_lines(pdf), page_lines(pdf)
    again = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    assert [f["id"] for f in again.body["fulfillments"]] == [here["id"], there["id"]], again
    sale = (
        await eventually(
            lambda: tenant.get(f"/sales/{sale_id}"),
            lambda a: len(a.body["fulfillments"]) == 2,
            what="the sale showing both fulfillments",
        )
    ).body
    assert sale["status"] == "in_fulfillment"

    # the part at `far` ships first: the sale waits for the other
    shipped = await tenant.post(
        f"/fulfillment/fulfillments/{there['id']}/status", {"status": "shipped"}
    )
    assert (shipped.status, shipped.body["status"]) == (200, "shipped"), shipped
    sale = (await tenant.get(f"/sales/{sale_id}")).body
    assert sale["status"] == "in_fulfillment"
    assert [p["location_id"] for p in sale["shipped_parts"]] == [far]
    assert [h["to_status"] for h in sale["status_history"]][-1] == "in_fulfillment"

    # once a part has left, the sale cannot be canceled
    refused = await tenant.post(
        "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
    )
    assert refused.status == 409, refused
    assert refused.body["code"] == "conflict"
    assert refused.body["detail"] == (
        f"Part of the sale has shipped (from {far}): it can no longer be canceled."
    )
    assert refused.body["sale_status"] == "in_fulfillment"
    assert refused.body["shipped_locations"] == [far]

    # the last part ships the sale, and its stock is committed at both locations
    last = await tenant.post(
        f"/fulfillment/fulfillments/{here['id']}/status", {"status": "shipped"}
    )
    assert (last.status, last.body["status"]) == (200, "shipped"), last
    sale = (await tenant.get(f"/sales/{sale_id}")).body
    assert sale["status"] == "shipped"
    assert [p["location_id"] for p in sale["shipped_parts"]] == [far, near]
    history = [(h["to_status"], h["reason"]) for h in sale["status_history"]]
    assert history[-1] == ("shipped", "fulfillment_shipped")
    assert [to for to, _ in history].count("shipped") == 1
    await eventually(
        lambda: records(tenant, mug, crate),
        lambda found: found == {(near, mug): (2, 0), (far, crate): (4, 0)},
        what="both parts' stock committed",
    )

    # delivered when every fulfillment is
    for f in (there, here):
        moved = await tenant.post(
            f"/fulfillment/fulfillments/{f['id']}/status", {"status": "delivered"}
        )
        assert moved.status == 200, moved
        if f is there:
            await eventually(
                lambda: tenant.get(f"/sales/{sale_id}"),
                lambda a: [x["status"] for x in a.body["fulfillments"]].count("delivered") == 1,
                what="orders hearing of the first delivery",
            )
            assert (await tenant.get(f"/sales/{sale_id}")).body["status"] == "shipped"
    await eventually(
        lambda: tenant.get(f"/sales/{sale_id}"),
        lambda a: a.body["status"] == "delivered",
        what="the sale delivered with its last fulfillment",
    )
    assert (await tenant.get("/stock/integrity")).body["ok"] is True


async def test_a_split_sale_canceled_in_fulfillment_cancels_every_part(tenant: Client):
    near, far, mug, crate = await two_places(tenant, stock=3)
    sale_id = await split_sale(tenant, mug, crate)
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    assert len(init.body["fulfillments"]) == 2, init

    canceled = await tenant.post(
        "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
    )

    assert canceled.status == 200, canceled
    for f in init.body["fulfillments"]:
        await eventually(
            lambda f=f: tenant.get(f"/fulfillment/fulfillments/{f['id']}"),
            lambda a: a.body["status"] == "canceled",
            what=f"the fulfillment at {f['location']['location_id']} canceled",
        )
        refused = await tenant.post(
            f"/fulfillment/fulfillments/{f['id']}/status", {"status": "shipped"}
        )
        assert refused.status == 409, refused
    await eventually(
        lambda: records(tenant, mug, crate),
        lambda found: found == {(near, mug): (3, 0), (far, crate): (3, 0)},
        what="every part released",
    )


async def test_shipping_init_repeated_and_concurrent_gives_one_fulfillment_per_part(
    tenant: Client, infrastructure
):
    sales = 12
    near, far, mug, crate = await two_places(tenant, stock=sales)
    sale_ids = [await split_sale(tenant, mug, crate) for _ in range(sales)]
    rng = random.Random()

    answers = await asyncio.gather(
        *(
            tenant.post("/fulfillment/shipping/init", {"sale_ids": rng.sample(sale_ids, k)})
            for k in (sales, sales, sales // 2, sales // 3, 1, sales, sales // 2, 2)
        )
    )

    seen: dict[str, set[str]] = defaultdict(set)
    for answer in answers:
        assert answer.status == 200, answer
        # a sale another request claimed a moment before is reported, as for any sale
        assert {(e["code"], e["status"]) for e in answer.body["errors"]} <= {
            ("invalid_status", "in_fulfillment")
        }, answer
        by_sale: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for f in answer.body["fulfillments"]:
            by_sale[f["sale_id"]].append(f)
        # a sale's fulfillments are together, its reservation's own location first
        order = [f["sale_id"] for f in answer.body["fulfillments"]]
        assert order == [s for s in dict.fromkeys(order) for _ in range(2)], answer
        for sale_id, found in by_sale.items():
            assert [f["location"]["location_id"] for f in found] == [near, far], answer
            seen[sale_id] |= {f["id"] for f in found}
    assert all(len(ids) == 2 for ids in seen.values()), "every answer gave the same two"
    # asked again once they are all claimed: every sale's two fulfillments, as before
    again = await tenant.post("/fulfillment/shipping/init", {"sale_ids": sale_ids})
    assert again.body["errors"] == [], again
    for sale_id in sale_ids:
        found = {f["id"] for f in again.body["fulfillments"] if f["sale_id"] == sale_id}
        assert len(found) == 2 and seen[sale_id] <= found, again
        seen[sale_id] = found
    db = await asyncpg.connect(infrastructure.database_url)
    try:
        for sale_id in sale_ids:
            rows = await fulfillment_rows(db, tenant, sale_id)
            assert {str(r["id"]) for r in rows} == seen[sale_id]
            assert [r["location"] for r in rows] == [near, far]
    finally:
        await db.close()
    sale = await eventually(
        lambda: tenant.get(f"/sales/{sale_ids[0]}"),
        lambda a: len(a.body["fulfillments"]) == 2,
        what="orders' copy of both fulfillments",
    )
    history = [h["to_status"] for h in sale.body["status_history"]]
    assert history.count("in_fulfillment") == 1


Op = Callable[[], Awaitable[None]]
RACE_SALES, RACE_CLIENTS = 60, 24


class SplitRace:
    """Shipping init, cancels and the parts' shipments (single and in waves) of the same
    split sales, in random order, with what each answer said."""

    def __init__(self, tenant: Client, rng: random.Random) -> None:
        self.tenant, self.rng = tenant, rng
        self.ops: list[Op] = []
        self.canceled_ok: set[str] = set()
        self.shipped_ok: set[str] = set()  # fulfillment ids marked shipped with a 200
        self.parts: dict[str, set[str]] = defaultdict(set)  # sale_id -> fulfillment ids
        self.answers: Counter = Counter()
        self.unexpected: list[tuple[str, Answer]] = []

    def note(self, what: str, answer: Answer) -> bool:
        self.answers[(what, answer.status)] += 1
        if answer.status not in (200, 409):
            self.unexpected.append((what, answer))
        return answer.status == 200

    def add(self, op: Op) -> None:
        self.ops.insert(self.rng.randint(0, len(self.ops)), op)

    def init_op(self, batch: list[str]) -> Op:
        async def init() -> None:
            answer = await self.tenant.post("/fulfillment/shipping/init", {"sale_ids": batch})
            if not self.note("init", answer):
                return
            by_sale: dict[str, list[str]] = defaultdict(list)
            for f in answer.body["fulfillments"]:
                by_sale[f["sale_id"]].append(f["id"])
            for sale_id, ids in by_sale.items():
                new = set(ids) - self.parts[sale_id]
                self.parts[sale_id] |= set(ids)
                if not new or self.rng.random() < 0.15:
                    continue  # left in fulfillment, unless canceled
                if self.rng.random() < 0.3:
                    self.add(self.wave_op(ids))  # both parts in one request
                else:
                    for fid in ids:
                        self.add(self.ship_op(fid))
                if self.rng.random() < 0.2:
                    self.add(self.ship_op(self.rng.choice(ids)))  # once more
                if self.rng.random() < 0.4:  # a cancel among the parts' shipments
                    self.add(self.cancel_op(sale_id))

        return init

    def cancel_op(self, sale_id: str) -> Op:
        async def cancel() -> None:
            answer = await self.tenant.post(
                "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
            )
            if self.note("cancel", answer):
                self.canceled_ok.add(sale_id)
            elif answer.body.get("shipped_locations"):
                self.answers[("cancel", "part shipped")] += 1

        return cancel

    def ship_op(self, fid: str) -> Op:
        async def ship() -> None:
            answer = await self.tenant.post(
                f"/fulfillment/fulfillments/{fid}/status", {"status": "shipped"}
            )
            if self.note("ship", answer):
                self.shipped_ok.add(fid)

        return ship

    def wave_op(self, ids: list[str]) -> Op:
        async def wave() -> None:
            answer = await self.tenant.post(
                "/fulfillment/fulfillments/status",
                {"updates": [{"id": fid, "status": "shipped"} for fid in ids]},
            )
            if not self.note("wave", answer):
                return
            self.shipped_ok |= {f["id"] for f in answer.body["fulfillments"]}
            assert {e["code"] for e in answer.body["errors"]} <= {"conflict"}, answer

        return wave

    async def run(self, clients: int) -> None:
        in_flight = 0
        changed = asyncio.Event()

        async def worker() -> None:
            nonlocal in_flight
            while True:
                if not self.ops:
                    if in_flight == 0:
                        changed.set()
                        return
                    changed.clear()
                    await changed.wait()
                    continue
                op = self.ops.pop()
                in_flight += 1
                try:
                    await op()
                finally:
                    in_flight -= 1
                    changed.set()

        await asyncio.gather(*(worker() for _ in range(clients)))


async def settled_state(db: asyncpg.Connection, tenant: Client) -> dict[str, Any]:
    tenant_id = uuid.UUID(tenant.tenant_id)
    sales = {
        r["sale_id"]: {
            "status": r["status"],
            "shipped": sorted(p["location_id"] for p in json.loads(r["parts"])),
            "history": list(r["history"]),
        }
        for r in await db.fetch(
            "SELECT s.sale_id, s.status, s.shipped_parts::text AS parts,"
            " array_agg(h.to_status ORDER BY h.id) AS history"
            " FROM orders.sales s JOIN orders.status_history h ON h.sale = s.id"
            " WHERE s.tenant_id = $1 GROUP BY s.id",
            tenant_id,
        )
    }
    fulfillments: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for r in await db.fetch(
        "SELECT sale_id, id, location, status FROM fulfilment.fulfillments"
        " WHERE tenant_id = $1 ORDER BY part",
        tenant_id,
    ):
        fulfillments[r["sale_id"]].append((str(r["id"]), r["location"], r["status"]))
    reservations = {
        r["sale_id"]: r["status"]
        for r in await db.fetch(
            "SELECT sale_id, status FROM stock.reservations WHERE tenant_id = $1", tenant_id
        )
    }
    return {"sales": sales, "fulfillments": fulfillments, "reservations": reservations}


def split_violations(
    state: dict[str, Any], race: SplitRace, places: list[str], stock: dict[tuple, tuple]
) -> list[str]:
    bad = []
    counts: Counter = Counter()
    for sale_id, sale in state["sales"].items():
        status, where = sale["status"], f"{sale_id} ({sale['status']})"
        counts[status] += 1
        parts = state["fulfillments"].get(sale_id, [])
        statuses = {loc: st for _, loc, st in parts}
        claimed = "in_fulfillment" in sale["history"]
        if claimed and sorted(loc for _, loc, _ in parts) != sorted(places):
            bad.append(f"{where}: fulfillments {parts}, not one per part")
        if not claimed and parts:
            bad.append(f"{where}: an unclaimed sale has fulfillments")
        if {fid for fid, _, _ in parts} != race.parts.get(sale_id, set()) and race.parts.get(
            sale_id
        ):
            bad.append(f"{where}: shipping init answered {race.parts[sale_id]}")
        shipped_ok = {fid for fid, _, _ in parts} & race.shipped_ok
        if status == "canceled":
            if sale["shipped"] or shipped_ok or {"shipped", "delivered"} & set(statuses.values()):
                bad.append(f"{where}: a part of a canceled sale shipped")
            if any(st != "canceled" for st in statuses.values()):
                bad.append(f"{where}: a fulfillment of a canceled sale is {statuses}")
            if state["reservations"].get(sale_id) != "released":
                bad.append(f"{where}: reservation {state['reservations'].get(sale_id)}")
        else:
            if sale_id in race.canceled_ok:
                bad.append(f"{where}: its cancel answered 200")
        if status == "shipped":
            if "canceled" in sale["history"] or sale["shipped"] != sorted(places):
                bad.append(f"{where}: history {sale['history']}, parts {sale['shipped']}")
            if set(statuses.values()) != {"shipped"}:
                bad.append(f"{where}: fulfillments {statuses}")
            if state["reservations"].get(sale_id) != "committed":
                bad.append(f"{where}: reservation {state['reservations'].get(sale_id)}")
        if status == "in_fulfillment":
            shipped_here = sorted(loc for loc, st in statuses.items() if st == "shipped")
            if shipped_here != sale["shipped"] or len(shipped_here) == 2:
                bad.append(f"{where}: fulfillments {statuses}, parts {sale['shipped']}")
        if status in ("pending", "in_fulfillment"):
            if state["reservations"].get(sale_id) != "active":
                bad.append(f"{where}: reservation {state['reservations'].get(sale_id)}")
        if status not in ("pending", "in_fulfillment", "shipped", "canceled"):
            bad.append(f"{where}: unexpected status")
    open_sales = counts["pending"] + counts["in_fulfillment"]
    expected = (RACE_SALES - counts["shipped"], open_sales)
    for key, figures in stock.items():
        if figures != expected:
            bad.append(f"stock at {key}: (quantity, reserved) {figures} != {expected}")
    return bad


async def test_cancel_and_the_parts_shipments_race_never_ship_part_of_a_canceled_sale(
    tenant: Client, infrastructure
):
    near, far, mug, crate = await two_places(tenant, stock=RACE_SALES)
    sale_ids = []
    for _ in range(RACE_SALES):
        body = routed((mug, 1), (crate, 1))
        answer = await tenant.post("/sales", body, headers={"Prefer": "respond-async"})
        assert answer.status == 202, answer
        sale_ids.append(body["sale_id"])
    await eventually(
        lambda: tenant.get("/sales", status="pending", limit=1),
        lambda a: a.body["pagination"]["total_count"] == RACE_SALES,
        timeout=30,
        interval=0.2,
        what="every split sale pending",
    )

    seed = random.randrange(2**32)
    race = SplitRace(tenant, random.Random(seed))
    shuffled = race.rng.sample(sale_ids, len(sale_ids))
    while shuffled:
        size = race.rng.randint(1, 10)
        race.add(race.init_op(shuffled[:size]))
        if race.rng.random() < 0.2:
            race.add(race.init_op(list(reversed(shuffled[:size]))))
        shuffled = shuffled[size:]
    for sale_id in sale_ids:
        if race.rng.random() < 0.4:
            race.add(race.cancel_op(sale_id))
    await race.run(RACE_CLIENTS)

    assert not race.unexpected, f"seed {seed}: {race.unexpected[:5]}"
    db = await asyncpg.connect(infrastructure.database_url)
    try:

        async def observe() -> tuple[dict[str, Any], dict]:
            return await settled_state(db, tenant), await records(tenant, mug, crate)

        try:
            state, _ = await eventually(
                observe,
                lambda seen: not split_violations(seen[0], race, [near, far], seen[1]),
                timeout=30,
                interval=0.25,
                what=f"a consistent end state (seed {seed})",
            )
        except AssertionError:
            seen = await observe()
            problems = split_violations(seen[0], race, [near, far], seen[1])
            raise AssertionError(
                f"seed {seed}: {len(problems)} violations, e.g. {problems[:10]};"
                f" answers {dict(race.answers)}"
            ) from None
    finally:
        await db.close()

    final = Counter(sale["status"] for sale in state["sales"].values())
    canceled_in_fulfillment = sum(
        1
        for sale in state["sales"].values()
        if sale["status"] == "canceled" and "in_fulfillment" in sale["history"]
    )
    assert final["shipped"] > 0 and canceled_in_fulfillment > 0, (seed, final, race.answers)
    assert (await tenant.get("/stock/integrity")).body["ok"] is True


async def test_fulfilment_dying_after_the_claim_of_a_split_sale_leaves_one_fulfillment_per_part(
    tenant: Client,
    platform: Platform,
    http: aiohttp.ClientSession,
    infrastructure,
):
    near, far, mug, crate = await two_places(tenant, stock=2)
    sale_id = await split_sale(tenant, mug, crate)
    db = await asyncpg.connect(infrastructure.database_url)
    env = {**platform.service_env("fulfilment"), "FAULT_POINTS": "fulfilment.after_claim"}
    try:
        async with extra_process(
            platform, "fulfilment-faulty", "fulfilment.app:create_app", env
        ) as faulty:
            await dies_on(
                http,
                faulty,
                "/api/v1/fulfillment/shipping/init",
                {"sale_ids": [sale_id]},
                internal_headers(platform, tenant),
            )

        sale = (await tenant.get(f"/sales/{sale_id}")).body
        assert sale["status"] == "in_fulfillment", "orders claimed the sale before the crash"
        rows = await eventually(
            lambda: fulfillment_rows(db, tenant, sale_id),
            lambda found: len(found) == 2,
            timeout=40,
            interval=0.1,
            what="a fulfillment per part made by the reconciler",
        )
        assert [(r["location"], r["status"]) for r in rows] == [
            (near, "waiting_for_picking"),
            (far, "waiting_for_picking"),
        ]
        ids = [str(r["id"]) for r in rows]
        await eventually(
            lambda: tenant.get(f"/sales/{sale_id}"),
            lambda a: sorted(f["id"] for f in a.body["fulfillments"]) == sorted(ids),
            what="the sale showing both fulfillments",
        )

        again = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
        assert again.status == 200, again
        assert [f["id"] for f in again.body["fulfillments"]] == ids, again
        assert [str(r["id"]) for r in await fulfillment_rows(db, tenant, sale_id)] == ids
        history = [
            h["to_status"] for h in (await tenant.get(f"/sales/{sale_id}")).body["status_history"]
        ]
        assert history.count("in_fulfillment") == 1
    finally:
        await db.close()
