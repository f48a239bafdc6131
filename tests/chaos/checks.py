"""What must hold after a fault, read from the database, the API and the receivers.

Every finding is one line that names the sale (or table, or endpoint) and what is wrong,
sorted into what the report counts: lost (acknowledged but not there, or not delivered),
doubled (there twice), stuck (not finished once the platform had time to settle) and
broken (an invariant that no amount of waiting fixes).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from fulfilkit.contracts import DOMAIN_TOPICS, dlq_topic
from tests.chaos.load import Ledger, Tenant

SCHEMAS_WITH_OUTBOX = ("orders", "stock", "fulfilment", "webhooks", "gateway")
STATUS_CHANGED = "sale.status_changed"


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.stuck or self.broken)

    def lines(self, most: int = 5) -> list[str]:
        out = []
        for kind in ("lost", "doubled", "stuck", "broken"):
            items = getattr(self, kind)
            out += [f"{kind}: {item}" for item in items[:most]]
            if len(items) > most:
                out.append(f"{kind}: ... and {len(items) - most} more")
        return out


@dataclass(frozen=True)
class DeadLetters:
    """Events put aside so far: inbox rows marked dead-lettered, messages on the DLQ topics,
    and outbox rows the relays parked because Kafka refused them."""

    inbox: int
    topics: int
    parked: int


async def dead_letters(db: asyncpg.Connection, bootstrap_servers: str) -> DeadLetters:
    inbox = parked = 0
    for schema in SCHEMAS_WITH_OUTBOX:
        if await db.fetchval("SELECT to_regclass($1)", f"{schema}.inbox"):
            inbox += await db.fetchval(
                f"SELECT count(*) FROM {schema}.inbox WHERE outcome = 'dead_lettered'"
            )
        if await db.fetchval("SELECT to_regclass($1)", f"{schema}.outbox_parked"):
            parked += await db.fetchval(f"SELECT count(*) FROM {schema}.outbox_parked")
    topics = await records_in(bootstrap_servers, [dlq_topic(t) for t in DOMAIN_TOPICS])
    return DeadLetters(inbox, topics, parked)


async def records_in(bootstrap_servers: str, topics: list[str]) -> int:
    """Records ever written to `topics` (the sum of their partitions' end offsets; a topic
    that does not exist holds none). The partitions come from the admin client: a consumer
    that subscribes to nothing knows no topic's partitions, and would always count 0."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10000)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if not t.get("error_code")
        for p in t.get("partitions") or ()
    ]
    if not partitions:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=10000,
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends.values())


async def unpublished(db: asyncpg.Connection) -> dict[str, int]:
    counts = {}
    for schema in SCHEMAS_WITH_OUTBOX:
        if await db.fetchval("SELECT to_regclass($1)", f"{schema}.outbox"):
            counts[schema] = await db.fetchval(f"SELECT count(*) FROM {schema}.outbox")
    return {schema: n for schema, n in counts.items() if n}


async def settled(db: asyncpg.Connection, tenants: list[Tenant]) -> bool:
    """Nothing in flight: outboxes empty, no sale awaiting stock, none claimed for shipping
    without its fulfillment, no delivery pending, and every receiver has every status
    change."""
    ids = [uuid.UUID(t.id) for t in tenants]
    if await unpublished(db):
        return False
    waiting = await db.fetchval(
        "SELECT count(*) FROM orders.sales WHERE tenant_id = ANY($1) AND status = 'awaiting_stock'",
        ids,
    )
    pending = await db.fetchval(
        "SELECT count(*) FROM webhooks.deliveries WHERE tenant_id = ANY($1) AND status = 'pending'",
        ids,
    )
    orphans = await db.fetchval(
        "SELECT count(*) FROM orders.sales s WHERE s.tenant_id = ANY($1) AND s.status IN"
        " ('in_fulfillment', 'shipped') AND NOT EXISTS (SELECT FROM fulfilment.fulfillments f"
        " WHERE f.tenant_id = s.tenant_id AND f.sale_id = s.sale_id)",
        ids,
    )
    if waiting or pending or orphans:
        return False
    expected = await _expected_changes(db, ids)
    for tenant in tenants:
        for receiver, _ in tenant.receivers:
            got = Counter(
                (d.sale_id, d.status)
                for d in receiver.unique().values()
                if d.type == STATUS_CHANGED
            )
            if expected[tenant.id] - got:
                return False
    return True


async def wait_settled(db: asyncpg.Connection, tenants: list[Tenant], timeout: float) -> float:
    """Seconds it took to settle; `timeout` when it did not (the check then says what)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if await settled(db, tenants):
                break
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass
        await asyncio.sleep(1.0)
    return time.monotonic() - started


async def _expected_changes(
    db: asyncpg.Connection, ids: list[uuid.UUID]
) -> dict[str, Counter[tuple[str, str]]]:
    """Per tenant, the sale status changes there were (one `sale.status_changed` each)."""
    rows = await db.fetch(
        "SELECT s.tenant_id, s.sale_id, h.to_status FROM orders.status_history h"
        " JOIN orders.sales s ON s.id = h.sale"
        " WHERE s.tenant_id = ANY($1) AND h.from_status IS NOT NULL",
        ids,
    )
    expected: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for r in rows:
        expected[str(r["tenant_id"])][(r["sale_id"], r["to_status"])] += 1
    return expected


async def check(
    db: asyncpg.Connection,
    tenants: list[Tenant],
    ledger: Ledger,
    dead_before: DeadLetters,
    bootstrap_servers: str,
) -> Findings:
    found = Findings()
    ids = [uuid.UUID(t.id) for t in tenants]
    await _sales(db, ids, ledger, found)
    await _stock(db, tenants, ids, found)
    await _webhooks(db, tenants, ids, found)
    for schema, n in (await unpublished(db)).items():
        found.stuck.append(f"{n} outbox rows of {schema} unpublished")
    dead = await dead_letters(db, bootstrap_servers)
    if dead.inbox > dead_before.inbox:
        found.broken.append(f"{dead.inbox - dead_before.inbox} events dead-lettered by consumers")
    if dead.topics > dead_before.topics:
        found.broken.append(f"{dead.topics - dead_before.topics} messages on DLQ topics")
    if dead.parked > dead_before.parked:
        found.broken.append(f"{dead.parked - dead_before.parked} outbox rows parked")
    for call, n in ledger.gave_up.items():
        found.stuck.append(f"{n} x {call} never got a final answer in the clients' patience")
    return found


async def _sales(
    db: asyncpg.Connection, ids: list[uuid.UUID], ledger: Ledger, found: Findings
) -> None:
    sales = await db.fetch(
        "SELECT s.sale_id, s.status, array_agg(h.to_status ORDER BY h.id) AS history,"
        " (SELECT count(*) FROM fulfilment.fulfillments f WHERE f.tenant_id = s.tenant_id"
        "  AND f.sale_id = s.sale_id) AS fulfillments,"
        " (SELECT count(DISTINCT f.location) FROM fulfilment.fulfillments f"
        "  WHERE f.tenant_id = s.tenant_id AND f.sale_id = s.sale_id) AS parts,"
        " (SELECT array_agg(f.status) FROM fulfilment.fulfillments f"
        "  WHERE f.tenant_id = s.tenant_id AND f.sale_id = s.sale_id) AS fulfillment_statuses,"
        " (SELECT r.status FROM stock.reservations r WHERE r.tenant_id = s.tenant_id"
        "  AND r.sale = s.id) AS reservation"
        " FROM orders.sales s JOIN orders.status_history h ON h.sale = s.id"
        " WHERE s.tenant_id = ANY($1) GROUP BY s.id",
        ids,
    )
    stored = Counter(r["sale_id"] for r in sales)
    by_id = {r["sale_id"]: r for r in sales}
    found.lost += [
        f"sale {s} answered 2xx, not stored" for s in sorted(ledger.created - set(stored))
    ]
    found.doubled += [f"sale {s} stored {n} times" for s, n in stored.items() if n > 1]
    for sale_id, r in by_id.items():
        status, history = r["status"], r["history"]
        if "canceled" in history and "shipped" in history:
            found.broken.append(f"sale {sale_id} both canceled and shipped: {history}")
        if sale_id in ledger.canceled and status != "canceled":
            found.lost.append(f"sale {sale_id}: cancel answered 200, sale is {status}")
        if sale_id in ledger.shipped and status not in ("shipped", "delivered"):
            found.lost.append(f"sale {sale_id}: shipped answered 200, sale is {status}")
        if r["fulfillments"] > r["parts"]:  # one per location a split sale ships from
            found.doubled.append(
                f"sale {sale_id} has {r['fulfillments']} fulfillments for {r['parts']} parts"
            )
        if status == "awaiting_stock":
            found.stuck.append(f"sale {sale_id} still awaiting_stock")
        elif status == "in_fulfillment" and not r["fulfillments"]:
            found.stuck.append(f"sale {sale_id} in_fulfillment without a fulfillment")
        elif status == "shipped" and set(r["fulfillment_statuses"] or ()) != {"shipped"}:
            found.stuck.append(f"sale {sale_id} shipped, fulfillment {r['fulfillment_statuses']}")
        want = {
            "pending": "active",
            "in_fulfillment": "active",
            "shipped": "committed",
            "canceled": "released",
        }.get(status)
        if (
            want
            and r["reservation"] != want
            and not (status == "canceled" and r["reservation"] is None)
        ):
            found.stuck.append(f"sale {sale_id} {status}, reservation {r['reservation']}")


async def _stock(
    db: asyncpg.Connection, tenants: list[Tenant], ids: list[uuid.UUID], found: Findings
) -> None:
    for tenant in tenants:
        answer = await tenant.api.get("/stock/integrity", record=False, retry_for=30)
        if answer is None or answer.status != 200:
            found.broken.append(f"integrity check of tenant {tenant.id} answered {answer}")
        elif answer.body.get("ok") is not True:
            found.broken.append(f"integrity of tenant {tenant.id}: {answer.body}")
    rows = await db.fetch(
        "SELECT r.sku, r.reserved, coalesce(sum(l.quantity) FILTER"
        " (WHERE v.status = 'active'), 0) AS active FROM stock.stock_records r"
        " LEFT JOIN stock.reservation_lines l ON l.stock_record_id = r.id"
        " LEFT JOIN stock.reservations v ON v.id = l.reservation_id"
        " WHERE r.tenant_id = ANY($1) GROUP BY r.id",
        ids,
    )
    found.broken += [
        f"{r['sku']}: reserved {r['reserved']}, active reservations {r['active']}"
        for r in rows
        if r["reserved"] != r["active"]
    ]


async def _webhooks(
    db: asyncpg.Connection, tenants: list[Tenant], ids: list[uuid.UUID], found: Findings
) -> None:
    expected = await _expected_changes(db, ids)
    for tenant in tenants:
        for receiver, _ in tenant.receivers:
            unique = receiver.unique()
            got = Counter(
                (d.sale_id, d.status) for d in unique.values() if d.type == STATUS_CHANGED
            )
            missing = expected[tenant.id] - got
            found.lost += [
                f"{receiver.name}: {sale} -> {status} not delivered"
                for (sale, status), n in sorted(missing.items())
                for _ in range(n)
            ]
            extra = got - expected[tenant.id]
            found.doubled += [
                f"{receiver.name}: {sale} -> {status} delivered under {n} more webhook-id(s)"
                for (sale, status), n in extra.items()
            ]
            bodies: dict[str, set[bytes]] = defaultdict(set)
            for d in receiver.received:
                bodies[d.webhook_id].add(d.body)
            found.broken += [
                f"{receiver.name}: webhook-id {w} carried different bodies"
                for w, b in bodies.items()
                if len(b) > 1
            ]
    failed = await db.fetchval(
        "SELECT count(*) FROM webhooks.deliveries WHERE tenant_id = ANY($1) AND status = 'failed'",
        ids,
    )
    pending = await db.fetchval(
        "SELECT count(*) FROM webhooks.deliveries WHERE tenant_id = ANY($1) AND status = 'pending'",
        ids,
    )
    if failed:
        found.lost.append(f"{failed} webhook deliveries failed for good")
    if pending:
        found.stuck.append(f"{pending} webhook deliveries still pending")
