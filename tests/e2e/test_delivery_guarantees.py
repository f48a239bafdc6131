"""At-least-once publishing, exactly-once effects, and dead-lettering, on the real broker."""

import asyncio
import contextlib
import os
import sys
import uuid
from pathlib import Path

import asyncpg
import orjson
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import create_pool, migrate
from fulfilkit.events import CloudEvent, utcnow
from fulfilkit.faults import CRASH_EXIT_STATUS
from fulfilkit.kafka import make_producer
from fulfilkit.outbox import OutboxRelay, add_events
from tests.e2e.sale_events import consumed
from tests.e2e.stocking import sale_body, stocked_product
from tests.kafka_tools import as_event, produce, read_all
from tests.support import Client, eventually, ref

LIBS = str(Path(__file__).parents[2] / "libs")


# Publishes the outbox's rows once, in a process whose relay dies after Kafka acknowledged
# them and before it marked them sent.
CRASHING_RELAY = """
import asyncio, sys
from fulfilkit.db import create_pool
from fulfilkit.faults import arm
from fulfilkit.kafka import make_producer
from fulfilkit.outbox import OutboxRelay

async def main(database_url, servers):
    pool = await create_pool(database_url)
    producer = make_producer(servers)
    await producer.start()
    arm("outbox.after_publish")
    await OutboxRelay(pool, "relaycrash", producer).publish_batch()

asyncio.run(main(*sys.argv[1:]))
"""


def sale_created(tenant_id: str, location: str, sku: str, quantity: int) -> CloudEvent:
    now = utcnow()
    snapshot = c.SaleSnapshot(
        id=uuid.uuid4(),
        sale_id=ref("S"),
        status="awaiting_stock",
        version=1,
        shop=c.Shop(channel="web", shop_name="t"),
        location_id=location,
        lines=[c.SaleLine(sku=sku, quantity=quantity)],
        created_at=now,
        updated_at=now,
    )
    return c.make_event(
        source="/orders",
        type=c.SALE_CREATED,
        tenant_id=uuid.UUID(tenant_id),
        subject=f"sale/{snapshot.id}",
        data=snapshot,
    )


async def test_relay_crash_between_publish_and_mark_still_reserves_once(
    tenant: Client,
    infrastructure,
    tmp_path: Path,
):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    event = sale_created(tenant.tenant_id, location, sku, quantity=2)
    pool = await create_pool(infrastructure.database_url)
    producer = make_producer(infrastructure.bootstrap_servers)
    await producer.start()
    try:
        await migrate(pool, "relaycrash", tmp_path)
        async with pool.acquire() as conn, conn.transaction():
            await add_events(conn, "relaycrash", [(c.sale_key(event.tenantid, event.id), event)])

        crashed = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CRASHING_RELAY, infrastructure.database_url,
            infrastructure.bootstrap_servers, env={**os.environ, "PYTHONPATH": LIBS},
        )  # fmt: skip
        assert await asyncio.wait_for(crashed.wait(), 60) == CRASH_EXIT_STATUS
        assert await OutboxRelay(pool, "relaycrash", producer).publish_batch() == 1

        copies = [
            r
            for r in await read_all(infrastructure.bootstrap_servers, c.SALES_TOPIC)
            if f'"id":"{event.id}"'.encode() in (r.value or b"")  # other records may not be JSON
        ]
        assert len(copies) == 2, "the crash should have made the relay publish twice"

        await consumed(infrastructure.bootstrap_servers)  # both copies
        reservations = await pool.fetchval(
            "SELECT count(*) FROM stock.reservations WHERE sale = $1", uuid.UUID(event.data["id"])
        )
        records = await tenant.get("/stock/stock-records", sku=sku)
        assert reservations == 1
        assert records.body["data"][0]["reserved"] == 2
    finally:
        await producer.stop()
        await pool.close()


async def test_poison_messages_are_dead_lettered_and_the_rest_flows(
    tenant: Client,
    infrastructure,
):
    bootstrap = infrastructure.bootstrap_servers
    garbage_key = ref("poison").encode()
    bad_data = sale_created(tenant.tenant_id, "wh", "sku", 1).model_copy(
        update={"data": {"id": "not-a-uuid"}}
    )
    bad_key = ref("bad-data").encode()
    await produce(
        bootstrap, c.SALES_TOPIC, [(garbage_key, b"\x00not json"), (bad_key, bad_data.to_bytes())]
    )

    sku, location, _ = await stocked_product(tenant, quantity=3)
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
    assert created.status == 201
    assert created.body["status"] == "pending"

    async def dead_lettered_by_stock() -> dict[bytes, dict[str, bytes]]:
        records = await read_all(bootstrap, c.dlq_topic(c.SALES_TOPIC))
        return {
            r.key: dict(r.headers)
            for r in records
            if r.key in (garbage_key, bad_key) and dict(r.headers)["dlq-consumer"] == b"stock"
        }

    found = await eventually(
        dead_lettered_by_stock,
        lambda d: len(d) == 2,
        what="both poison messages in sales.events.dlq",
    )
    assert found[garbage_key]["dlq-error"].startswith(b"unparseable event")
    assert found[garbage_key]["dlq-topic"] == c.SALES_TOPIC.encode()
    # A typed consumer refuses data that breaks its type's contract as it decodes the record,
    # before any transaction, and says which field broke it.
    assert found[bad_key]["dlq-error"].startswith(b"unparseable event")
    assert b"validation error" in found[bad_key]["dlq-error"]
    assert b"sale.created`.data.updated_at" in found[bad_key]["dlq-error"]


RELAY_BACKENDS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
    " AND ((classid::bigint << 32) | objid::bigint) = hashtext($1)::bigint"
)


@pytest.mark.parametrize("schema", ["orders", "stock"])
async def test_a_relay_that_loses_its_connection_leads_again_and_loses_nothing(
    tenant: Client,
    infrastructure,
    schema: str,
):
    """Its lock goes with its connection: the relay must notice, take the lock again and
    publish what was written meanwhile (a sale reaches `pending` only through both relays)."""
    sku, location, _ = await stocked_product(tenant, quantity=5)
    db = await asyncpg.connect(infrastructure.database_url)
    try:
        lock = f"outbox:{schema}"
        leader = await db.fetchval(RELAY_BACKENDS, lock)
        assert leader is not None, f"no relay holds {lock}"
        assert await db.fetchval("SELECT pg_terminate_backend($1)", leader)

        answer = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 1)))
        assert answer.status == 201 and answer.body["status"] == "pending", answer
        new_leader = await db.fetchval(RELAY_BACKENDS, lock)
        assert new_leader not in (None, leader)
    finally:
        await db.close()


async def test_events_a_service_ignores_leave_no_trace_in_its_inbox(
    tenant: Client,
    infrastructure,
):
    """Stock acts on a sale's creation and shipment, fulfilment on its claim and shipment;
    the other status changes are dropped before any transaction, so not recorded. Stock
    records none of them: its reservations are idempotent per sale (`stock.handlers`). So is a
    claim or shipment whose work fulfilment's own request has already committed
    (`fulfilment.settled`): which of those two the consumer still saw first is a race."""
    sku, location, _ = await stocked_product(tenant, quantity=5)
    sale_id = ref("S")
    created = await tenant.post("/sales", sale_body(sale_id, location, (sku, 1)))
    assert created.status == 201 and created.body["status"] == "pending", created
    init = await tenant.post("/fulfillment/shipping/init", {"sale_ids": [sale_id]})
    fulfillment = init.body["fulfillments"][0]["id"]
    shipped = await tenant.post(
        f"/fulfillment/fulfillments/{fulfillment}/status", {"status": "shipped"}
    )
    assert shipped.status == 200, shipped

    def of_sale(record) -> dict:
        try:
            event = orjson.loads(record.value)
        except orjson.JSONDecodeError:  # the poison test leaves garbage on the topic
            return {}
        data = event.get("data") if isinstance(event, dict) else None
        return event if isinstance(data, dict) and data.get("id") == created.body["id"] else {}

    async def sale_events() -> dict[tuple[str, str], uuid.UUID]:
        records = await read_all(infrastructure.bootstrap_servers, c.SALES_TOPIC)
        return {
            (e["type"], e["data"]["status"]): uuid.UUID(e["id"])
            for r in records
            if (e := of_sale(r))
        }

    ids = await eventually(
        sale_events,
        lambda i: (c.SALE_STATUS_CHANGED, "shipped") in i,
        what="the sale's shipment on the broker",
    )

    # A late cancel of the shipped sale, behind its other events on its partition (its
    # key): fulfilment records it (a cancel always goes through its consumer) and changes
    # nothing (a shipped fulfillment is not canceled), and once it has, fulfilment has
    # consumed every event of the sale before it.
    shipped_event = next(
        e
        for r in await read_all(infrastructure.bootstrap_servers, c.SALES_TOPIC)
        if (e := of_sale(r)) and e["id"] == str(ids[(c.SALE_STATUS_CHANGED, "shipped")])
    )
    late_cancel = c.make_event(
        source="/orders",
        type=c.SALE_CANCELED,
        tenant_id=uuid.UUID(shipped_event["tenantid"]),
        subject=shipped_event["subject"],
        data=c.SaleStatusChanged.model_validate(
            {**shipped_event["data"], "status": "canceled", "previous_status": "shipped"}
        ),
    )
    sale_key = c.sale_key(late_cancel.tenantid, uuid.UUID(shipped_event["data"]["id"]))
    await produce(
        infrastructure.bootstrap_servers,
        c.SALES_TOPIC,
        [(sale_key.encode(), late_cancel.to_bytes())],
    )
    db = await asyncpg.connect(infrastructure.database_url)
    try:

        async def recorded(schema: str) -> set[tuple[str, str]]:
            rows = await db.fetch(
                f"SELECT event_id FROM {schema}.inbox WHERE event_id = ANY($1::uuid[])",
                list(ids.values()),
            )
            found = {r["event_id"] for r in rows}
            return {key for key, event_id in ids.items() if event_id in found}

        status_changed = c.SALE_STATUS_CHANGED
        await consumed(infrastructure.bootstrap_servers)  # stock's group, past the late cancel
        assert await recorded("stock") == set()  # idempotent per sale: it records none
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM fulfilment.inbox WHERE event_id = $1", late_cancel.id
            ),
            lambda n: n == 1,
            what="fulfilment consumed the late cancel",
        )
        fulfilment = await recorded("fulfilment")
        assert fulfilment <= {(status_changed, "in_fulfillment"), (status_changed, "shipped")}
    finally:
        await db.close()


async def test_a_lingering_relay_publishes_everything_in_order_and_keeps_nothing(
    tenant: Client,
    infrastructure,
    tmp_path: Path,
):
    sku, location, _ = await stocked_product(tenant, quantity=10)
    events = [sale_created(tenant.tenant_id, location, sku, quantity=1) for _ in range(6)]
    key = c.sale_key(events[0].tenantid, events[0].id)  # one partition, so order shows
    pool = await create_pool(infrastructure.database_url)
    producer = make_producer(infrastructure.bootstrap_servers)
    await producer.start()
    relay = OutboxRelay(pool, "relaylinger", producer, poll_interval=0.2, linger=0.05)
    await migrate(pool, "relaylinger", tmp_path)
    running = asyncio.create_task(relay.run())
    try:
        for event in events:  # one commit each, some while the relay lingers
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, "relaylinger", [(key, event)])

        async def published() -> list[str]:
            return [
                e["id"]
                for r in await read_all(infrastructure.bootstrap_servers, c.SALES_TOPIC)
                if r.key == key.encode() and (e := as_event(r)) is not None
            ]

        ids = await eventually(
            published, lambda found: len(found) >= len(events), what="every event on the topic"
        )
        assert ids == [str(e.id) for e in events]
        await eventually(
            lambda: pool.fetchval("SELECT count(*) FROM relaylinger.outbox"),
            lambda left: left == 0,
            what="the outbox to empty",
        )
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await producer.stop()
        await pool.close()
