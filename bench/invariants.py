"""What `bench/sales_flow.py` checks once its sales are all shipped, and what it reads to put a
cost on a lifecycle besides CPU: PostgreSQL's WAL and writes, Kafka's records and log bytes.

The checks read the database as its superuser and the API as the bench's tenant (whose key
has the `admin` scope, for `GET /stock/integrity`):

- every sale the bench created is `shipped`, reached `shipped` once in its history, and has
  exactly one fulfillment, itself `shipped`;
- the stock integrity check of the tenant is clean;
- nothing oversold: no record below zero, none reserving more than it has, and the units
  that left the warehouses are exactly the units the sales took;
- reserved is back to zero everywhere, no reservation is still active;
- nothing dead-lettered or parked: no row in any service's `dead_letters`, no inbox row
  marked dead-lettered, no parked outbox row, no record on a `.dlq` topic; every outbox empty
  (within `OUTBOX_DRAIN_SECONDS`: a relay deletes what it published with its next round).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from fulfilkit.contracts import DOMAIN_TOPICS, dlq_topic

SCHEMAS = ("orders", "stock", "fulfilment", "webhooks", "gateway")


class Api(Protocol):
    async def get(self, path: str) -> tuple[int, dict]: ...


@dataclass(frozen=True)
class Expected:
    tenant: UUID
    sales: int  # sales the bench created
    units: int  # units those sales took, all lines
    stocked: int  # units the bench put in stock


async def _relation(conn: asyncpg.Connection, name: str) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)


async def check(database_url: str, bootstrap: str, api: Api, expected: Expected) -> list[str]:
    """Every broken invariant, one line each; empty when all hold."""
    found: list[str] = []
    conn = await asyncpg.connect(database_url)
    try:
        await _check_sales(conn, expected, found)
        await _check_stock(conn, expected, found)
        await _until_outboxes_empty(conn)
        await _check_leftovers(conn, found)
    finally:
        await conn.close()
    status, report = await api.get("/stock/integrity")
    if status != 200 or not report.get("ok"):
        found.append(f"stock integrity: {status} {report}")
    dlq = await dlq_records(bootstrap)
    if dlq:
        found.append(f"{dlq} records on the .dlq topics")
    return found


async def _check_sales(conn: asyncpg.Connection, expected: Expected, found: list[str]) -> None:
    tenant = expected.tenant
    statuses = dict(
        await conn.fetch(
            "SELECT status, count(*) FROM orders.sales WHERE tenant_id = $1 GROUP BY status",
            tenant,
        )
    )
    if statuses != {"shipped": expected.sales}:
        found.append(f"sales by status {statuses}, expected {{'shipped': {expected.sales}}}")
    shipped_twice = await conn.fetchval(
        "SELECT count(*) FROM (SELECT h.sale FROM orders.status_history h"
        " JOIN orders.sales s ON s.id = h.sale"
        " WHERE s.tenant_id = $1 AND h.to_status = 'shipped'"
        " GROUP BY h.sale HAVING count(*) <> 1) x",
        tenant,
    )
    if shipped_twice:
        found.append(f"{shipped_twice} sales reached shipped more than once in their history")
    fulfillments = await conn.fetchrow(
        "SELECT count(*) AS total, count(DISTINCT sale) AS sales,"
        " count(*) FILTER (WHERE status <> 'shipped') AS unshipped"
        " FROM fulfilment.fulfillments WHERE tenant_id = $1",
        tenant,
    )
    if fulfillments["total"] != expected.sales or fulfillments["sales"] != expected.sales:
        found.append(
            f"{fulfillments['total']} fulfillments for {fulfillments['sales']} sales,"
            f" expected one for each of {expected.sales}"
        )
    if fulfillments["unshipped"]:
        found.append(f"{fulfillments['unshipped']} fulfillments not shipped")


async def _check_stock(conn: asyncpg.Connection, expected: Expected, found: list[str]) -> None:
    tenant = expected.tenant
    records = await conn.fetchrow(
        "SELECT coalesce(sum(quantity), 0) AS on_hand, coalesce(sum(reserved), 0) AS reserved,"
        " count(*) FILTER (WHERE quantity < 0 OR reserved > quantity OR reserved < 0) AS bad"
        " FROM stock.stock_records WHERE tenant_id = $1",
        tenant,
    )
    if records["bad"]:
        found.append(f"{records['bad']} stock records below zero or reserving more than they hold")
    if records["reserved"]:
        found.append(f"{records['reserved']} units still reserved")
    left = expected.stocked - records["on_hand"]
    if left != expected.units:
        found.append(f"{left} units left the warehouses, the sales took {expected.units}")
    active = await conn.fetchval(
        "SELECT count(*) FROM stock.reservations WHERE tenant_id = $1 AND status = 'active'",
        tenant,
    )
    if active:
        found.append(f"{active} reservations still active")


# A relay deletes the rows Kafka acknowledged with the query of its next round, at most
# `fulfilkit.outbox.SENT_DELETE_SECONDS` after its last publish: a check right after the last
# event waits this long at most for the outboxes to empty.
OUTBOX_DRAIN_SECONDS = 5.0


async def _until_outboxes_empty(conn: asyncpg.Connection) -> None:
    deadline = time.monotonic() + OUTBOX_DRAIN_SECONDS
    while time.monotonic() < deadline:
        left = 0
        for schema in SCHEMAS:
            if await _relation(conn, f"{schema}.outbox"):
                left += await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox")
        if not left:
            return
        await asyncio.sleep(0.05)


async def _check_leftovers(conn: asyncpg.Connection, found: list[str]) -> None:
    for schema in SCHEMAS:
        for table, where, what in (
            ("dead_letters", "", "dead letters"),
            ("inbox", " WHERE outcome = 'dead_lettered'", "inbox rows dead-lettered"),
            ("outbox_parked", "", "parked outbox rows"),
            ("outbox", "", "unpublished outbox rows"),
        ):
            if await _relation(conn, f"{schema}.{table}"):
                count = await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}{where}")
                if count:
                    found.append(f"{schema}: {count} {what}")


async def dlq_records(bootstrap: str) -> int:
    ends = await end_offsets(bootstrap, [dlq_topic(t) for t in DOMAIN_TOPICS])
    return sum(ends.values())


async def partitions_of(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """How many partitions each topic has (0 when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    found = {t["topic"]: len(t.get("partitions") or ()) for t in described}
    return {t: found.get(t, 0) for t in topics}


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Records ever written to each topic (the sum of its partitions' end offsets)."""
    partitions = [
        TopicPartition(t, p)
        for t, count in (await partitions_of(bootstrap, topics)).items()
        for p in range(count)
    ]
    totals = dict.fromkeys(topics, 0)
    if not partitions:
        return totals
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    for tp, end in ends.items():
        totals[tp.topic] += end
    return totals


async def consumer_groups(bootstrap: str, groups: list[str]) -> dict[str, list[list[str]]]:
    """Each consumer group's members, as the partitions each was assigned."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # one group a request: aiokafka fails to decode an answer describing several
        responses = [r for g in groups for r in await admin.describe_consumer_groups([g])]
    finally:
        await admin.close()
    found: dict[str, list[list[str]]] = {}
    for response in responses:
        for described in response.to_object()["groups"]:
            members = found.setdefault(described["group"], [])
            for member in described["members"]:
                raw = member["member_assignment"]
                assigned = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
                members.append(
                    [f"{tp.topic}:{tp.partition}" for tp in assigned.partitions()]
                    if assigned
                    else []
                )
    return {group: found.get(group, []) for group in groups}


# What a run writes, besides CPU


async def database_counters(database_url: str) -> dict[str, float]:
    """PostgreSQL's cumulative counters: WAL (records, full-page images, and bytes: the
    write position), transactions that wrote (the next transaction id), the database's
    commits and rows written, and the rows written in each service's schema
    (`rows written, <schema>`).

    The WAL position and the transaction id move at once; the others are statistics, which
    a busy backend reports at most once a second and an idle one within 10 s: take them
    from a settled platform (`settle_statistics`)."""
    conn = await asyncpg.connect(database_url)
    try:
        wal = await conn.fetchrow(
            "SELECT wal_records, wal_fpi, pg_current_wal_lsn() - '0/0'::pg_lsn AS wal_bytes,"
            " pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS write_transactions"
            " FROM pg_stat_wal"
        )
        db = await conn.fetchrow(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted"
            " FROM pg_stat_database WHERE datname = current_database()"
        )
        schemas = await conn.fetch(
            "SELECT schemaname, sum(n_tup_ins + n_tup_upd + n_tup_del) AS rows"
            " FROM pg_stat_user_tables WHERE schemaname = any($1::text[]) GROUP BY schemaname",
            list(SCHEMAS),
        )
    finally:
        await conn.close()
    rows = {f"rows written, {schema}": 0.0 for schema in SCHEMAS}
    rows.update({f"rows written, {r['schemaname']}": float(r["rows"]) for r in schemas})
    return {
        **{k: float(v) for k, v in wal.items()},
        **{k: float(v) for k, v in db.items()},
        **rows,
    }


STATISTICS_DELAY_SECONDS = 11.0  # an idle backend reports its statistics within 10 s


def kafka_log_bytes(data_dir: Path) -> dict[str, int]:
    """Bytes in the broker's log segments: the domain topics, and the consumer offsets."""
    totals = {"domain topics": 0, "consumer offsets": 0}
    for partition in data_dir.glob("*-*"):
        topic = partition.name.rpartition("-")[0]
        kind = (
            "domain topics"
            if topic in DOMAIN_TOPICS
            else "consumer offsets"
            if topic == "__consumer_offsets"
            else None
        )
        if kind:
            totals[kind] += sum(f.stat().st_size for f in partition.glob("*.log"))
    return totals
