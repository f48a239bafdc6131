"""A row Kafka refuses never stops the outbox: it is parked with the reason and the rows
behind it, another tenant's among them, are published; an operator lists parked rows and,
once the cause is fixed, puts them back."""

import asyncio
import os
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import create_pool, migrate
from fulfilkit.kafka import check_message_size, make_producer
from fulfilkit.outbox import OutboxRelay, outbox_insert
from fulfilkit.parked import list_parked, requeue
from fulfilkit.supervise import Supervisor
from tests.kafka_tools import read_all
from tests.support import eventually, ref

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# No service consumes dead-letter topics: rows sent there touch nothing else in the suite.
TOPIC = c.dlq_topic(c.SALES_TOPIC)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def add_rows(
    pool, schema: str, key: str, payloads: list[bytes], traceparent: str | None = None
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in payloads]
    await pool.execute(
        outbox_insert(schema, 1),
        ids,
        [TOPIC] * len(ids),
        [key] * len(ids),
        payloads,
        [c.SALE_CREATED] * len(ids),
        [traceparent] * len(ids),
    )
    return ids


async def published(bootstrap: str, key: str) -> list[bytes]:
    return [r.value for r in await read_all(bootstrap, TOPIC) if r.key == key.encode()]


async def test_an_oversized_row_of_one_tenant_is_parked_and_the_others_flow_on(
    infrastructure,
    tmp_path: Path,
):
    schema = ref("park").replace("-", "_")
    tenant_a, tenant_b = f"{uuid.uuid4()}:a", f"{uuid.uuid4()}:b"
    pool = await create_pool(infrastructure.database_url)
    producer = make_producer(infrastructure.bootstrap_servers, max_request_size=1048576)
    await producer.start()
    loops = Supervisor(first_delay=0.1, max_delay=1.0)
    try:
        await migrate(pool, schema, tmp_path)
        # Tenant A's event is 1.35 MB, as a sale with a huge `customer` once became; tenant
        # B's are committed after it and must not wait behind it.
        huge = b"[" + b"100000.0," * 150_000 + b"0]"
        [too_large] = await add_rows(pool, schema, tenant_a, [huge])
        b_payloads = [orjson.dumps({"n": n, "tenant": "b"}) for n in range(5)]
        await add_rows(pool, schema, tenant_b, b_payloads[:3])
        relay = OutboxRelay(pool, schema, producer, poll_interval=0.2)
        loops.start("outbox_relay", relay.run)
        await add_rows(pool, schema, tenant_b, b_payloads[3:])

        assert (
            await eventually(
                lambda: published(infrastructure.bootstrap_servers, tenant_b),
                lambda found: len(found) >= 5,
                timeout=30,
                interval=0.2,
                what="tenant B's events on the topic",
            )
            == b_payloads
        )
        await eventually(
            lambda: pool.fetchval(f"SELECT count(*) FROM {schema}.outbox"),
            lambda left: left == 0,
            what="the outbox to empty",
        )
        [parked] = await list_parked(pool, [schema])
        assert (parked.schema, parked.event_id, parked.topic, parked.key) == (
            schema,
            too_large,
            TOPIC,
            tenant_a,
        )
        assert parked.size > 1_048_576
        assert parked.reason.startswith("MessageSizeTooLargeError"), parked.reason
        assert parked.reason.endswith("(refused 1 time)"), parked.reason
        assert relay.parked == 1
        assert loops.loops["outbox_relay"].failures == 0, "parking is not a failure"
        assert await published(infrastructure.bootstrap_servers, tenant_a) == []

        # What an operator sees
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fulfilkit.parked",
            "list",
            "--schema",
            schema,
            env={
                **os.environ,
                "DATABASE_URL": infrastructure.database_url,
                "PYTHONPATH": str(REPO / "libs"),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        [line] = out.decode().splitlines()
        listed = orjson.loads(line)
        assert (listed["schema"], listed["seq"], listed["event_id"], listed["size"]) == (
            schema,
            parked.seq,
            str(too_large),
            parked.size,
        )
        assert listed["reason"] == parked.reason
    finally:
        await loops.stop()
        await producer.stop()
        await pool.close()


async def test_a_parked_row_goes_out_once_requeued_under_a_limit_that_fits(
    infrastructure,
    tmp_path: Path,
):
    schema = ref("park").replace("-", "_")
    key = f"{uuid.uuid4()}:requeue"
    payload = b'{"blob": "' + b"x" * 200_000 + b'"}'
    pool = await create_pool(infrastructure.database_url)
    small = make_producer(infrastructure.bootstrap_servers, max_request_size=100_000)
    large = make_producer(infrastructure.bootstrap_servers, max_request_size=1048576)
    await small.start()
    await large.start()
    try:
        await migrate(pool, schema, tmp_path)
        [event_id] = await add_rows(pool, schema, key, [payload], TRACEPARENT)
        assert await OutboxRelay(pool, schema, small).publish_batch() == 0
        [parked] = await list_parked(pool, [schema])
        assert parked.event_id == event_id

        assert await requeue(pool, schema, [parked.seq]) == 1
        assert await list_parked(pool, [schema]) == []
        relay = OutboxRelay(pool, schema, large)
        assert await relay.publish_batch() == 1
        assert await relay.publish_batch() == 0  # deletes what the first call published
        assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0
        assert await published(infrastructure.bootstrap_servers, key) == [payload]
        [record] = [
            r
            for r in await read_all(infrastructure.bootstrap_servers, TOPIC)
            if r.key == key.encode()
        ]
        assert dict(record.headers)["traceparent"] == TRACEPARENT.encode(), "kept while parked"
    finally:
        await small.stop()
        await large.stop()
        await pool.close()


async def test_a_producer_limit_above_what_the_broker_accepts_is_refused_at_start(
    infrastructure,
):
    await check_message_size(infrastructure.bootstrap_servers, c.ALL_TOPICS, 1048576)
    with pytest.raises(RuntimeError) as refused:
        await check_message_size(infrastructure.bootstrap_servers, c.ALL_TOPICS, 2 * 1048576)
    message = str(refused.value)
    assert message.startswith(
        "KAFKA_MAX_REQUEST_SIZE is 2097152 bytes, but Kafka accepts at most 1048588 bytes on "
    ), message
    assert c.SALES_TOPIC in message and "message.max.bytes" in message
