"""Edits (of lines, and of the location), shipping (shipping init, then mark shipped) and
cancels race for the same sales, in random order, against real Kafka and PostgreSQL.
Whatever wins: no stock below zero, the integrity check is clean, every shipped sale
committed exactly its final lines at its final location, no canceled sale shipped, every
open sale holds exactly its lines, and every sale's final version has its history (one
entry per version)."""

import asyncio
import json
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tests.e2e.test_sale_edits import patch
from tests.e2e.test_stock_policies import location, product, sale
from tests.support import Answer, Client, eventually

SALES, CLIENTS = 80, 24
# units on hand at each of two locations; B runs short: some edits backorder their sale
STOCK = {"first": {"A": 150, "B": 12}, "second": {"A": 40, "B": 4}}
CHOICES = [[("A", 1)], [("A", 2)], [("A", 1), ("B", 1)], [("B", 2)], [("B", 1), ("A", 3)]]

Op = Callable[[], Awaitable[None]]


@dataclass
class Race:
    tenant: Client
    rng: random.Random
    skus: dict[str, str]  # "A" -> the real sku
    locations: dict[str, str]  # "first" -> the real location_id
    ops: list[Op] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)
    unexpected: list[tuple[str, Answer]] = field(default_factory=list)
    canceled_ok: set[str] = field(default_factory=set)
    shipped_ok: set[str] = field(default_factory=set)

    def _note(self, what: str, answer: Answer, ok: tuple[int, ...] = (200,)) -> bool:
        self.answers[(what, answer.status)] += 1
        if answer.status not in (*ok, 409):
            self.unexpected.append((what, answer))
        return answer.status in ok

    def add(self, op: Op) -> None:
        self.ops.insert(self.rng.randint(0, len(self.ops)), op)

    def edit_op(self, sale_id: str) -> Op:
        lines = [{"sku": self.skus[k], "quantity": q} for k, q in self.rng.choice(CHOICES)]
        body: dict[str, Any] = {"lines": lines}
        if self.rng.random() < 0.3:  # and moved to a location, maybe the one it is at
            body["location_id"] = self.rng.choice(list(self.locations.values()))
        prefer = {"Prefer": "respond-async"} if self.rng.random() < 0.5 else {}
        stale = self.rng.random() < 0.2

        async def edit() -> None:
            version: Any = "*"
            if stale:  # read, then edit what was read: a change in between makes it 409
                read = await self.tenant.get(f"/sales/{sale_id}")
                version = read.body["version"]
            answer = await patch(self.tenant, sale_id, body, version, **prefer)
            self._note("edit", answer, (200, 202))

        return edit

    def init_op(self, batch: list[str]) -> Op:
        async def init() -> None:
            answer = await self.tenant.post("/fulfillment/shipping/init", {"sale_ids": batch})
            if not self._note("shipping_init", answer):
                return
            for fulfillment in answer.body["fulfillments"]:
                if self.rng.random() < 0.8:
                    self.add(self.ship_op(fulfillment["sale_id"], fulfillment["id"]))

        return init

    def ship_op(self, sale_id: str, fid: str) -> Op:
        async def ship() -> None:
            answer = await self.tenant.post(
                f"/fulfillment/fulfillments/{fid}/status", {"status": "shipped"}
            )
            if self._note("mark_shipped", answer):
                self.shipped_ok.add(sale_id)

        return ship

    def cancel_op(self, sale_id: str) -> Op:
        async def cancel() -> None:
            answer = await self.tenant.post(
                "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
            )
            if self._note("cancel", answer):
                self.canceled_ok.add(sale_id)

        return cancel

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


Units = dict[tuple[str, str], int]  # (location_id, sku) -> units


@dataclass
class Seen:
    sales: dict[str, dict[str, Any]]  # sale_id -> status, version, lines, history, fulfillments
    held: dict[str, tuple[str, Units]]  # sale_id -> reservation status, where its units are
    committed: dict[str, Units]  # sale_id -> the units the ledger committed, where
    records: dict[tuple[str, str], dict[str, Any]]  # (location_id, sku) -> the stock record
    integrity: dict[str, Any]


async def observe(db: asyncpg.Connection, tenant: Client, skus: dict[str, str]) -> Seen:
    tenant_id = uuid.UUID(tenant.tenant_id)
    sales = {
        r["sale_id"]: {
            "status": r["status"],
            "version": r["version"],
            # where the sale asks for its units: its lines at its location
            "lines": {
                (r["location_id"], ln["sku"]): ln["quantity"] for ln in json.loads(r["lines"])
            },
            "history": list(r["history"]),
            "fulfillments": [f["status"] for f in json.loads(r["fulfillments"])],
        }
        for r in await db.fetch(
            "SELECT s.sale_id, s.status, s.version, s.location_id, s.lines::text AS lines,"
            " s.fulfillments::text AS fulfillments,"
            " array_agg(h.to_status ORDER BY h.id) AS history"
            " FROM orders.sales s JOIN orders.status_history h ON h.sale = s.id"
            " WHERE s.tenant_id = $1 GROUP BY s.id",
            tenant_id,
        )
    }
    held: dict[str, tuple[str, Units]] = {}
    for r in await db.fetch(
        "SELECT r.sale_id, r.status, k.location_id, l.sku, l.quantity FROM stock.reservations r"
        " LEFT JOIN stock.reservation_lines l ON l.reservation_id = r.id"
        " LEFT JOIN stock.stock_records k ON k.id = l.stock_record_id WHERE r.tenant_id = $1",
        tenant_id,
    ):
        _, lines = held.setdefault(r["sale_id"], (r["status"], {}))
        if r["sku"] is not None:
            at = (r["location_id"], r["sku"])
            lines[at] = lines.get(at, 0) + r["quantity"]
    committed: dict[str, Units] = defaultdict(dict)
    for r in await db.fetch(
        "SELECT m.reference, k.location_id, k.sku, -sum(m.reserved_change) AS units"
        " FROM stock.movements m JOIN stock.stock_records k ON k.id = m.stock_record_id"
        " WHERE m.tenant_id = $1 AND m.reason = 'commit' GROUP BY 1, 2, 3",
        tenant_id,
    ):
        committed[r["reference"]][(r["location_id"], r["sku"])] = r["units"]
    records = {}
    for sku in skus.values():
        for record in (await tenant.get("/stock/stock-records", sku=sku)).body["data"]:
            records[(record["location_id"], sku)] = record
    integrity = (await tenant.get("/stock/integrity")).body
    return Seen(sales, held, dict(committed), records, integrity)


def violations(seen: Seen, race: Race, sale_ids: list[str]) -> list[str]:
    bad: list[str] = []
    reserved: Counter = Counter()
    shipped: Counter = Counter()
    for sale_id in sale_ids:
        s = seen.sales.get(sale_id)
        if s is None:
            bad.append(f"{sale_id} missing")
            continue
        status, lines = s["status"], s["lines"]
        where = f"{sale_id} ({status} v{s['version']}, history {s['history']})"
        held_status, held = seen.held.get(sale_id, (None, {}))
        if len(s["history"]) != s["version"]:
            bad.append(f"{where}: {len(s['history'])} history entries")
        if "shipped" in s["history"] and "canceled" in s["history"]:
            bad.append(f"{where}: both shipped and canceled")
        if sale_id in race.canceled_ok and status != "canceled":
            bad.append(f"{where}: cancel answered 200")
        if sale_id in race.shipped_ok and status != "shipped":
            bad.append(f"{where}: mark-shipped answered 200")
        if status == "awaiting_stock":
            bad.append(f"{where}: still awaiting stock")
        elif status == "shipped":
            shipped.update(lines)
            if held_status != "committed" or held != lines:
                bad.append(f"{where}: reservation {held_status} {held}, lines {lines}")
            if seen.committed.get(sale_id) != lines:
                bad.append(f"{where}: committed {seen.committed.get(sale_id)}, lines {lines}")
        elif status == "canceled":
            if "shipped" in s["fulfillments"] or sale_id in seen.committed:
                bad.append(f"{where}: a canceled sale shipped")
            if held_status not in (None, "released"):
                bad.append(f"{where}: reservation {held_status}")
        elif status in ("pending", "in_fulfillment"):
            reserved.update(lines)
            if held_status != "active" or held != lines:
                bad.append(f"{where}: reservation {held_status} {held}, lines {lines}")
        elif status == "backordered":
            if held_status == "active":
                bad.append(f"{where}: holds {held} while backordered")
    for place, stocked in STOCK.items():
        for key, quantity in stocked.items():
            at = (race.locations[place], race.skus[key])
            record = seen.records[at]
            figures = (record["quantity"], record["reserved"])
            expected = (quantity - shipped[at], reserved[at])
            if figures != expected or record["available"] < 0:
                bad.append(f"{place} {key}: (quantity, reserved) {figures} != {expected}")
    if not seen.integrity["ok"]:
        bad.append(f"integrity: {seen.integrity}")
    return bad


async def test_edits_shipping_and_cancels_race_and_every_invariant_holds(
    tenant: Client, infrastructure
):
    locations = {place: await location(tenant) for place in STOCK}
    skus = {key: await product(tenant, None, 0) for key in STOCK["first"]}
    for place, stocked in STOCK.items():
        for key, quantity in stocked.items():
            record = {"sku": skus[key], "location_id": locations[place], "quantity": quantity}
            assert (await tenant.post("/stock/stock-records", record)).status == 201
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    bodies = [sale(locations["first"], (skus["A"], 1)) for _ in range(SALES)]
    sale_ids = [b["sale_id"] for b in bodies]
    sem = asyncio.Semaphore(16)

    async def create(body: dict[str, Any]) -> None:
        async with sem:
            answer = await tenant.post("/sales", body)
            assert answer.status == 201, answer

    await asyncio.gather(*map(create, bodies))

    race = Race(tenant, rng, skus, locations)
    for sale_id in sale_ids:
        for _ in range(rng.randint(1, 3)):
            race.add(race.edit_op(sale_id))
        if rng.random() < 0.4:
            race.add(race.cancel_op(sale_id))
    shuffled = rng.sample(sale_ids, len(sale_ids))
    for i in range(0, len(shuffled), 8):
        race.add(race.init_op(shuffled[i : i + 8]))
        if rng.random() < 0.5:  # again later: sales that were awaiting stock the first time
            race.add(race.init_op(shuffled[i : i + 8]))
    await race.run(CLIENTS)
    assert not race.unexpected, f"seed {seed}: {race.unexpected[:5]}"

    db = await asyncpg.connect(infrastructure.database_url)
    try:
        seen = await eventually(
            lambda: observe(db, tenant, skus),
            lambda s: not violations(s, race, sale_ids),
            timeout=45,
            interval=0.5,
            what=f"a consistent end state (seed {seed})",
        )
    except AssertionError:
        last = await observe(db, tenant, skus)
        problems = violations(last, race, sale_ids)
        raise AssertionError(
            f"seed {seed}: {len(problems)} violations, e.g. {problems[:10]};"
            f" answers {dict(race.answers)}"
        ) from None
    finally:
        await db.close()

    final = Counter(s["status"] for s in seen.sales.values())
    moved = sum(1 for s in seen.sales.values() if (locations["second"], skus["A"]) in s["lines"])
    edited = race.answers[("edit", 200)] + race.answers[("edit", 202)]
    # the race raced: sales were edited (some moved), shipped and canceled; edits were refused
    assert final["shipped"] > 0 and final["canceled"] > 0, (final, race.answers)
    assert edited > 0 and moved > 0 and race.answers[("edit", 409)] > 0, race.answers
