"""Shipping init, cancel and mark-shipped race for the same sales, in random order.

Whatever wins, a sale ends canceled or shipped, never both; it is claimed once and has at
most one fulfillment; an answer of 200 is kept; and its stock is released or committed once.
"""

import asyncio
import json
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Answer, Client, eventually, ref

SALES, QUANTITY, CLIENTS, BYSTANDERS = 300, 2, 32, 10
FINAL = ("canceled", "shipped")

Op = Callable[[], Awaitable[None]]


@dataclass
class Race:
    """What the clients fired and what they were told."""

    tenant: Client
    rng: random.Random
    ops: list[Op] = field(default_factory=list)
    canceled_ok: set[str] = field(default_factory=set)
    shipped_ok: set[str] = field(default_factory=set)
    fulfillment_of_sale: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    answers: Counter = field(default_factory=Counter)
    unexpected: list[tuple[str, Answer]] = field(default_factory=list)

    def _note(self, what: str, answer: Answer) -> bool:
        self.answers[(what, answer.status)] += 1
        if answer.status not in (200, 409):
            self.unexpected.append((what, answer))
        return answer.status == 200

    def add(self, op: Op) -> None:
        """Put an operation at a random place among those not started yet."""
        self.ops.insert(self.rng.randint(0, len(self.ops)), op)

    def init_op(self, batch: list[str]) -> Op:
        async def init() -> None:
            answer = await self.tenant.post("/fulfillment/shipping/init", {"sale_ids": batch})
            if not self._note("shipping_init", answer):
                return
            wave: dict[str, str] = {}  # shipped together in one batch request
            for fulfillment in answer.body["fulfillments"]:
                sale_id, fid = fulfillment["sale_id"], fulfillment["id"]
                assert sale_id in batch, (batch, answer)
                if fid in self.fulfillment_of_sale[sale_id]:
                    continue
                self.fulfillment_of_sale[sale_id].add(fid)
                if self.rng.random() < 0.2:
                    continue  # left in fulfillment, unless canceled
                if self.rng.random() < 0.3:
                    wave[fid] = sale_id
                    continue
                # some fulfillments are marked shipped by several clients at once
                self.add(self.ship_op(sale_id, fid, self.rng.choice((1, 1, 1, 2, 3))))
                if self.rng.random() < 0.2:
                    self.add(self.ship_op(sale_id, fid, 1))
            if wave:
                self.add(self.ship_wave_op(wave))
                if self.rng.random() < 0.2:
                    self.add(self.ship_wave_op(wave))
            for error in answer.body["errors"]:
                assert error["code"] == "invalid_status", answer

        return init

    def cancel_op(self, sale_id: str) -> Op:
        async def cancel() -> None:
            answer = await self.tenant.post(
                "/sales/cancel", {"sale_id": sale_id, "cancel_reason": "customer_request"}
            )
            if self._note("cancel", answer):
                self.canceled_ok.add(sale_id)

        return cancel

    def ship_op(self, sale_id: str, fid: str, copies: int) -> Op:
        async def ship() -> None:
            answers = await asyncio.gather(
                *(
                    self.tenant.post(
                        f"/fulfillment/fulfillments/{fid}/status", {"status": "shipped"}
                    )
                    for _ in range(copies)
                )
            )
            for answer in answers:
                if self._note("mark_shipped", answer):
                    assert answer.body["status"] == "shipped", answer
                    self.shipped_ok.add(sale_id)

        return ship

    def ship_wave_op(self, wave: dict[str, str]) -> Op:
        """Mark several fulfillments shipped in one batch request."""

        async def ship_wave() -> None:
            answer = await self.tenant.post(
                "/fulfillment/fulfillments/status",
                {"updates": [{"id": fid, "status": "shipped"} for fid in wave]},
            )
            self._note("mark_shipped_batch", answer)
            if answer.status != 200:
                return
            for fulfillment in answer.body["fulfillments"]:
                assert fulfillment["status"] == "shipped", answer
                self.shipped_ok.add(wave[fulfillment["id"]])
            for error in answer.body["errors"]:
                assert error["code"] == "conflict", answer
                self.answers[("mark_shipped_batch", "refused item")] += 1
            assert len(answer.body["fulfillments"]) + len(answer.body["errors"]) == len(wave)

        return ship_wave

    async def run(self, clients: int) -> None:
        """Workers take operations in random order until none is left or in flight; a
        finished shipping init adds the mark-shipped calls for the fulfillments it got."""
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


def batches(rng: random.Random, sale_ids: list[str], largest: int) -> list[list[str]]:
    shuffled = rng.sample(sale_ids, len(sale_ids))
    out = []
    while shuffled:
        size = rng.randint(1, largest)
        out.append(shuffled[:size])
        shuffled = shuffled[size:]
    return out


@dataclass
class Settled:
    sales: dict[str, dict[str, Any]]  # sale_id -> {status, history, fulfillments (orders' copy)}
    fulfillments: dict[str, list[tuple[str, str]]]  # sale_id -> [(id, status)] in fulfilment
    ledger: dict[tuple[str, str], int]  # (sale_id, reason) -> rows
    reservations: dict[str, str]  # sale_id -> reservation status
    record: dict[str, Any]
    active_reserved: int
    integrity: dict[str, Any]


async def observe(db: asyncpg.Connection, tenant: Client, record_id: str) -> Settled:
    tenant_id = uuid.UUID(tenant.tenant_id)
    sales = {
        r["sale_id"]: {
            "status": r["status"],
            "fulfillments": json.loads(r["fulfillments"]),
            "history": list(r["history"]),
        }
        for r in await db.fetch(
            "SELECT s.sale_id, s.status, s.fulfillments::text AS fulfillments,"
            " array_agg(h.to_status ORDER BY h.id) AS history"
            " FROM orders.sales s JOIN orders.status_history h ON h.sale = s.id"
            " WHERE s.tenant_id = $1 GROUP BY s.id",
            tenant_id,
        )
    }
    fulfillments: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in await db.fetch(
        "SELECT sale_id, id, status FROM fulfilment.fulfillments"
        " WHERE tenant_id = $1 ORDER BY date_created",
        tenant_id,
    ):
        fulfillments[r["sale_id"]].append((str(r["id"]), r["status"]))
    ledger = {
        (r["reference"], r["reason"]): r["n"]
        for r in await db.fetch(
            "SELECT reference, reason, count(*) AS n FROM stock.movements"
            " WHERE tenant_id = $1 AND stock_record_id = $2 GROUP BY reference, reason",
            tenant_id,
            uuid.UUID(record_id),
        )
    }
    reservations = {
        r["sale_id"]: r["status"]
        for r in await db.fetch(
            "SELECT sale_id, status FROM stock.reservations WHERE tenant_id = $1", tenant_id
        )
    }
    active_reserved = await db.fetchval(
        "SELECT coalesce(sum(l.quantity), 0) FROM stock.reservations r"
        " JOIN stock.reservation_lines l ON l.reservation_id = r.id"
        " WHERE r.tenant_id = $1 AND r.status = 'active' AND l.stock_record_id = $2",
        tenant_id,
        uuid.UUID(record_id),
    )
    record = (await tenant.get(f"/stock/stock-records/{record_id}")).body
    integrity = (await tenant.get("/stock/integrity")).body
    return Settled(
        sales, dict(fulfillments), ledger, reservations, record, active_reserved, integrity
    )


def violations(s: Settled, race: Race, sale_ids: list[str], stocked: int) -> list[str]:
    """Every broken guarantee (or effect not arrived yet) in one observation."""
    bad: list[str] = []
    if set(s.sales) != set(sale_ids):
        bad.append(f"sales of the tenant differ: {len(s.sales)} vs {len(sale_ids)}")
    for sale_id in sale_ids:
        sale = s.sales.get(sale_id)
        if sale is None:
            continue
        status, history = sale["status"], sale["history"]
        fulfillments = s.fulfillments.get(sale_id, [])
        statuses = [st for _, st in fulfillments]
        where = f"{sale_id} ({status}, history {history}, fulfillments {statuses})"
        if len(fulfillments) > 1:
            bad.append(f"{where}: more than one fulfillment")
        if history.count("in_fulfillment") > 1:
            bad.append(f"{where}: claimed more than once")
        if "shipped" in history and "canceled" in history:
            bad.append(f"{where}: both shipped and canceled")
        if sale_id in race.canceled_ok and status != "canceled":
            bad.append(f"{where}: cancel answered 200")
        if sale_id in race.shipped_ok and status != "shipped":
            bad.append(f"{where}: mark-shipped answered 200")
        answered = race.fulfillment_of_sale.get(sale_id, set())
        if not answered <= {fid for fid, _ in fulfillments}:
            bad.append(f"{where}: shipping init answered with {answered}")
        if status == "canceled":
            if {"shipped", "delivered"} & set(statuses):
                bad.append(f"{where}: a canceled sale's fulfillment left the warehouse")
            if any(st != "canceled" for st in statuses):
                bad.append(f"{where}: fulfillment of a canceled sale is not canceled")
            if s.reservations.get(sale_id) != "released":
                bad.append(f"{where}: reservation {s.reservations.get(sale_id)}, not released")
        elif status == "shipped":
            if statuses != ["shipped"]:
                bad.append(f"{where}: a shipped sale's fulfillment is not shipped")
            if s.reservations.get(sale_id) != "committed":
                bad.append(f"{where}: reservation {s.reservations.get(sale_id)}, not committed")
        elif status == "in_fulfillment":
            if statuses != ["waiting_for_picking"]:
                bad.append(f"{where}: a sale in fulfillment has no live fulfillment")
        elif status == "pending":
            if fulfillments:
                bad.append(f"{where}: an unclaimed sale has a fulfillment")
        else:
            bad.append(f"{where}: unexpected status")
        if status in ("pending", "in_fulfillment") and s.reservations.get(sale_id) != "active":
            bad.append(f"{where}: reservation {s.reservations.get(sale_id)}, not active")
        ours = sorted((f["id"], f["status"]) for f in sale["fulfillments"])
        if ours != sorted(fulfillments):
            bad.append(f"{where}: orders shows fulfillments {ours}")
        expected_ledger = {
            "reservation": 1,
            "release": int(status == "canceled"),
            "commit": int(status == "shipped"),
        }
        ledger = {reason: s.ledger.get((sale_id, reason), 0) for reason in expected_ledger}
        if ledger != expected_ledger:
            bad.append(f"{where}: ledger rows {ledger}")
    open_sales = sum(1 for sale in s.sales.values() if sale["status"] not in FINAL)
    shipped = sum(1 for sale in s.sales.values() if sale["status"] == "shipped")
    figures = (s.record["quantity"], s.record["reserved"], s.active_reserved)
    expected = (stocked - shipped * QUANTITY, open_sales * QUANTITY, open_sales * QUANTITY)
    if figures != expected:
        bad.append(f"stock (quantity, reserved, active reservations) {figures} != {expected}")
    if not s.integrity["ok"]:
        bad.append(f"integrity: {s.integrity}")
    return bad


async def test_shipping_cancel_and_mark_shipped_race_never_ship_a_canceled_sale(
    tenant: Client,
    infrastructure,
):
    stocked = SALES * QUANTITY
    sku, location, record = await stocked_product(tenant, quantity=stocked)
    sale_ids = [ref("S") for _ in range(SALES)]
    queue = iter(sale_ids)

    async def create() -> None:
        for sale_id in queue:
            answer = await tenant.post(
                "/sales",
                sale_body(sale_id, location, (sku, QUANTITY)),
                headers={"Prefer": "respond-async"},
            )
            assert answer.status == 202, answer

    await asyncio.gather(*(create() for _ in range(16)))
    await eventually(
        lambda: tenant.get("/sales", status="pending", limit=1),
        lambda a: a.body["pagination"]["total_count"] == SALES,
        timeout=30,
        interval=0.2,
        what="every sale pending",
    )

    seed = random.randrange(2**32)
    race = Race(tenant, random.Random(seed))
    racing = sale_ids[BYSTANDERS:]  # the bystanders stay pending and keep their stock
    for batch in batches(race.rng, racing, 50) + batches(
        race.rng, race.rng.sample(racing, len(racing) * 2 // 5), 100
    ):
        race.add(race.init_op(batch))
        if race.rng.random() < 0.1:  # the same batch twice at about the same time
            race.add(race.init_op(list(reversed(batch))))
    for sale_id in racing:
        if race.rng.random() < 0.85:  # the others end shipped or in fulfillment
            race.add(race.cancel_op(sale_id))
    await race.run(CLIENTS)

    assert not race.unexpected, f"seed {seed}: answers other than 200/409: {race.unexpected[:5]}"
    db = await asyncpg.connect(infrastructure.database_url)
    try:
        settled = await eventually(
            lambda: observe(db, tenant, record["id"]),
            lambda s: not violations(s, race, sale_ids, stocked),
            timeout=30,
            interval=0.25,
            what=f"a consistent end state (seed {seed})",
        )
    except AssertionError:
        last = await observe(db, tenant, record["id"])
        problems = violations(last, race, sale_ids, stocked)
        raise AssertionError(
            f"seed {seed}: {len(problems)} violations, e.g. {problems[:10]}"
            f"; answers {dict(race.answers)}"
        ) from None
    finally:
        await db.close()

    # The race must have raced: some sales shipped, some canceled after being claimed.
    final = Counter(sale["status"] for sale in settled.sales.values())
    canceled_in_fulfillment = sum(
        1
        for sale in settled.sales.values()
        if sale["status"] == "canceled" and "in_fulfillment" in sale["history"]
    )
    assert final["shipped"] > 0 and canceled_in_fulfillment > 0, (final, race.answers)
    assert final["pending"] == BYSTANDERS, final
    assert race.answers[("mark_shipped", 409)] > 0, race.answers
    assert race.answers[("mark_shipped_batch", "refused item")] > 0, race.answers

    # What clients read through the API agrees with what was checked in the database.
    sem = asyncio.Semaphore(CLIENTS)

    async def read(sale_id: str) -> Answer:
        async with sem:
            return await tenant.get(f"/sales/{sale_id}")

    for sale_id, answer in zip(sale_ids, await asyncio.gather(*map(read, sale_ids)), strict=True):
        assert answer.status == 200, answer
        assert answer.body["status"] == settled.sales[sale_id]["status"], answer
        history = [h["to_status"] for h in answer.body["status_history"]]
        assert not ("shipped" in history and "canceled" in history), answer
        assert len(answer.body["fulfillments"]) <= 1, answer
