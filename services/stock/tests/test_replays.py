"""Stock's consumer records in its inbox only the returns' receipts: its sale events are
applied again when they come again, and that changes nothing, on a real Kafka and
PostgreSQL: the same batch handed over twice, and the records redelivered to the next
consumer of the group after one applied them and died before committing its offsets."""

import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent, utcnow
from fulfilkit.inbox import Inbox
from fulfilkit.kafka import make_producer
from stock.handlers import CONSUMERS
from tests.e2e.sale_events import as_status, event, snapshot
from tests.support import ref

pytestmark = pytest.mark.integration

CONSUMER = CONSUMERS[0]


def edited(sale: c.SaleSnapshot, *lines: tuple[str, int]) -> c.SaleUpdated:
    return c.SaleUpdated(
        **{
            **sale.model_dump(),
            "lines": [c.SaleLine(sku=sku, quantity=q) for sku, q in lines],
            "version": sale.version + 1,
            "previous_status": sale.status,
            "changed": ["lines"],
        }
    )


def received(tenant: uuid.UUID, sku: str, quantity: int, location: str) -> CloudEvent:
    now = utcnow()
    line = c.ReturnReceivedLine(
        sku=sku, quantity=quantity, disposition="restock", location_id=location
    )
    data = c.ReturnStatusChanged(
        id=uuid.uuid4(),
        sale=uuid.uuid4(),
        sale_id=ref("S"),
        status="received",
        previous_status="requested",
        version=2,
        reason="damaged",
        lines=[c.ReturnLine(sku=sku, quantity=quantity)],
        received_lines=[line],
        created_at=now,
        updated_at=now,
    )
    return c.make_event(
        source="/orders",
        type=c.RETURN_STATUS_CHANGED,
        tenant_id=tenant,
        subject=f"return/{data.id}",
        data=data,
    )


async def state(pool: asyncpg.Pool, tenant: uuid.UUID) -> dict[str, Any]:
    """Everything stock keeps of a tenant's stock that an event can change."""
    queries = {
        "records": "SELECT location_id, sku, quantity, reserved, version FROM stock.stock_records"
        " WHERE tenant_id = $1 ORDER BY location_id, sku",
        "reservations": "SELECT sale, location_id, status, version, sale_version"
        " FROM stock.reservations WHERE tenant_id = $1 ORDER BY sale",
        "lines": "SELECT r.sale, l.sku, l.quantity FROM stock.reservation_lines l"
        " JOIN stock.reservations r ON r.id = l.reservation_id WHERE r.tenant_id = $1"
        " ORDER BY 1, 2",
        "queue": "SELECT sale, location_id, lines FROM stock.backorders WHERE tenant_id = $1"
        " ORDER BY sale",
        "movements": "SELECT location_id, sku, reason, quantity_change, reserved_change,"
        " reference FROM stock.movements WHERE tenant_id = $1 ORDER BY id",
        "events": "SELECT count(*) FROM stock.outbox WHERE key LIKE $1 || '%'",
    }
    out: dict[str, Any] = {}
    async with pool.acquire() as conn:
        for name, sql in queries.items():
            rows = await conn.fetch(sql, str(tenant) if name == "events" else tenant)
            out[name] = [tuple(r) for r in rows]
    return out


async def inbox_rows(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await pool.fetch(
        "SELECT event_id FROM stock.inbox WHERE consumer = 'stock' AND event_id = ANY($1::uuid[])",
        ids,
    )
    return {r["event_id"] for r in rows}


@pytest.fixture
async def producer(infrastructure):
    producer = make_producer(infrastructure.bootstrap_servers, max_request_size=1048576)
    await producer.start()
    yield producer
    await producer.stop()


def inbox_of(pool: asyncpg.Pool, producer: AIOKafkaProducer) -> Inbox:
    """The stock service's inbox for its consumer of sale events, as it builds it."""
    return Inbox(
        pool,
        "stock",
        "stock",
        producer,
        CONSUMER.apply(None),  # type: ignore[arg-type]  # stock's apply needs no runtime
        event_types=CONSUMER.event_types,
        relevant=CONSUMER.relevant,
        records_inbox=CONSUMER.records_inbox,
    )


async def published(
    producer: AIOKafkaProducer, key: bytes, events: list[CloudEvent]
) -> tuple[TopicPartition, int, int]:
    """Put the events on the sales topic under one key (one partition, in order): the
    partition, the first offset and the one after the last."""
    offsets = []
    for e in events:
        meta = await producer.send_and_wait(c.SALES_TOPIC, value=e.to_bytes(), key=key)
        offsets.append((meta.partition, meta.offset))
    partition = offsets[0][0]
    return TopicPartition(c.SALES_TOPIC, partition), offsets[0][1], offsets[-1][1] + 1


def member(bootstrap: str, group: str) -> AIOKafkaConsumer:
    """A consumer of `group` that commits only when told to."""
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)


async def read(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> list[Any]:
    """The records from the consumer's position up to `end` (real ConsumerRecords)."""
    records: list[Any] = []
    while await consumer.position(tp) < end:
        for items in (await consumer.getmany(tp, timeout_ms=500)).values():
            records.extend(r for r in items if r.offset < end)
    consumer.seek(tp, end)  # what it fetched beyond `end` is read by the next call
    return records


async def test_sale_events_applied_twice_change_nothing_and_leave_no_inbox_row(
    pool, tenant, stocked, producer, infrastructure
):
    await stocked("A", quantity=5, location="wh-1")
    await stocked("B", quantity=1, location="wh-1")
    kept = snapshot("wh-1", ("A", 2))  # reserved, then shipped
    dropped = snapshot("wh-1", ("A", 1))  # reserved, then canceled
    waiting = snapshot("wh-1", ("B", 3))  # short: queued
    changed = snapshot("wh-1", ("A", 1))  # reserved, then edited to 2 of B: queued
    t = str(tenant)
    first = [
        event(c.SALE_CREATED, t, kept),
        event(c.SALE_CREATED, t, dropped),
        event(c.SALE_CREATED, t, waiting),
        event(c.SALE_CREATED, t, changed),
    ]
    second = [
        event(c.SALE_STATUS_CHANGED, t, as_status(kept, "shipped")),
        event(c.SALE_CANCELED, t, as_status(dropped, "canceled")),
        event(c.SALE_UPDATED, t, edited(changed, ("B", 2))),
        received(tenant, "A", 3, "wh-1"),
    ]
    key = c.sale_key(tenant, kept.id).encode()
    tp, start, middle = await published(producer, key, first)
    _, _, end = await published(producer, key, second)
    inbox = inbox_of(pool, producer)
    group = ref("stock-replays")

    # One consumer of the group applies both batches and dies before committing offsets
    dying = member(infrastructure.bootstrap_servers, group)
    await dying.start()
    try:
        dying.assign([tp])
        await dying.commit({tp: start})
        dying.seek(tp, start)
        batches = [await read(dying, tp, middle), await read(dying, tp, end)]
        for batch in batches:
            await inbox.handle(batch)
        once = await state(pool, tenant)
        # the same batches again, as a consumer retrying them would hand them over
        for batch in batches:
            await inbox.handle(batch)
        assert await state(pool, tenant) == once
    finally:
        await dying.stop()  # no commit: the group resumes at `start`

    assert sorted((r[0], r[2], r[3]) for r in once["reservations"]) == sorted(
        [(kept.id, "committed", 2), (dropped.id, "released", 2)]
    )
    assert [r[0] for r in once["queue"]] == sorted([waiting.id, changed.id])
    # A: 5 + 3 returned - 2 shipped; B: nothing reserved (both sales wait for it)
    assert [r[:4] for r in once["records"]] == [("wh-1", "A", 6, 0), ("wh-1", "B", 1, 0)]
    returned = second[-1]
    assert await inbox_rows(pool, [e.id for e in first + second]) == {returned.id}

    # The next consumer of the group is handed the records again, from the committed offset
    successor = member(infrastructure.bootstrap_servers, group)
    await successor.start()
    try:
        successor.assign([tp])
        assert await successor.committed(tp) == start
        successor.seek(tp, start)
        redelivered = await read(successor, tp, end)
        assert [r.offset for r in redelivered] == list(range(start, end))
        await inbox.handle(redelivered)
        await successor.commit({tp: end})
    finally:
        await successor.stop()
    assert await state(pool, tenant) == once
    assert await inbox_rows(pool, [e.id for e in first + second]) == {returned.id}
