"""Where a sale's create-to-pending time goes, hop by hop, read after a run from the
timestamps the platform writes anyway: the create (`orders.sales.created_at`, taken by the
orders request), the Kafka record of its `sale.created` (its timestamp: when orders' relay
sent it), stock's reservation (`stock.reservations.created_at`: the start of stock's
consumer transaction), the Kafka record of its `stock.reserved` (stock's relay) and the
`pending` entry of its history (`orders.status_history.at`: the start of orders' consumer
transaction). Every clock is this machine's.

`bench/sales_flow.py` prints these for the sales of its fixed-rate run.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from fulfilkit import contracts as c

HOPS = (
    ("create -> orders relay sent sale.created", "created", "sale_created_sent"),
    ("-> stock's transaction began", "sale_created_sent", "reserving"),
    ("-> stock relay sent stock.reserved", "reserving", "reserved_sent"),
    ("-> orders' transaction began (pending)", "reserved_sent", "pending"),
    ("create -> pending, in all", "created", "pending"),
)


async def offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """Every partition's end offset now: where `sent_at` starts reading."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(t, p)
                for t in topics
                for p in consumer._client.cluster.partitions_for_topic(t) or ()
            ]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def sent_at(
    bootstrap: str, start: dict[TopicPartition, int], types: set[str]
) -> dict[tuple[str, UUID], float]:
    """(event type, sale) -> the record's timestamp (seconds), for the records of `types`
    written since `start`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    found: dict[tuple[str, UUID], float] = {}
    try:
        consumer.assign(list(start))
        ends = await consumer.end_offsets(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        left = {tp for tp in start if ends[tp] > start[tp]}
        while left:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batch:
                break
            for tp, records in batch.items():
                for record in records:
                    event = orjson.loads(record.value)
                    if event.get("type") in types:
                        data = event["data"]
                        sale = data.get("sale") or data["id"]
                        found[(event["type"], UUID(str(sale)))] = record.timestamp / 1000
                    if record.offset + 1 >= ends[tp]:
                        left.discard(tp)
    finally:
        await consumer.stop()
    return found


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.1f}  p99 {p99:6.1f}  max {ordered[-1]:6.1f} ms"


async def create_to_pending(
    database_url: str,
    bootstrap: str,
    tenant: UUID,
    sale_ids: Sequence[str],
    start: dict[TopicPartition, int],
) -> list[str]:
    """One line per hop: p50, p99 and max over the sales (ms)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT s.id, s.created_at,"
            " (SELECT min(r.created_at) FROM stock.reservations r"
            "  WHERE r.tenant_id = s.tenant_id AND r.sale = s.id) AS reserving,"
            " (SELECT min(h.at) FROM orders.status_history h"
            "  WHERE h.sale = s.id AND h.to_status = 'pending') AS pending"
            " FROM orders.sales s WHERE s.tenant_id = $1 AND s.sale_id = ANY($2::text[])",
            tenant,
            list(sale_ids),
        )
    finally:
        await conn.close()
    sent = await sent_at(bootstrap, start, {c.SALE_CREATED, c.STOCK_RESERVED})

    def seconds(value: datetime | None) -> float | None:
        return None if value is None else value.timestamp()

    stamps = [
        {
            "created": seconds(r["created_at"]),
            "sale_created_sent": sent.get((c.SALE_CREATED, r["id"])),
            "reserving": seconds(r["reserving"]),
            "reserved_sent": sent.get((c.STOCK_RESERVED, r["id"])),
            "pending": seconds(r["pending"]),
        }
        for r in rows
    ]
    lines = [f"where create-to-pending went, {len(stamps)} sales (each hop's own time):"]
    width = max(len(name) for name, _, _ in HOPS)
    for name, first, then in HOPS:
        spans = [
            (s[then] - s[first]) * 1000
            for s in stamps
            if s[first] is not None and s[then] is not None
        ]
        if spans:
            lines.append(f"  {name:<{width}}  {_ms(spans)}")
    return lines
