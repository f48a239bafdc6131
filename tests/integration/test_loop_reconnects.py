"""Loops that hold a PostgreSQL connection (the wake-up listener, the outbox relay) start over
on a new one when theirs is killed, and a request waiting meanwhile is not left to its bound."""

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import create_pool, migrate
from fulfilkit.kafka import make_producer
from fulfilkit.notify import Waiter
from fulfilkit.outbox import OutboxRelay, outbox_insert
from fulfilkit.supervise import Supervisor
from tests.kafka_tools import read_all
from tests.support import eventually, ref

pytestmark = pytest.mark.integration

TOPIC = c.dlq_topic(c.SALES_TOPIC)  # consumed by no service


async def kill_backends(dsn: str, application_name: str) -> int:
    """Terminate every server process of the pool named `application_name`, as a crashed
    backend or a restarted server would end them."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = $1) AS killed",
            application_name,
        )
    finally:
        await conn.close()


async def execute(dsn: str, sql: str, *args: object) -> None:
    """On a connection of its own: the pool's may have been killed a moment ago."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_the_waiter_listens_again_and_polls_while_it_cannot(infrastructure):
    dsn = infrastructure.database_url
    name, schema = ref("waiter"), ref("waits").replace("-", "_")
    channel = f"{schema}_wake"
    pool = await create_pool(dsn, application_name=name)
    await pool.execute(f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.settled (key text)")

    async def settled(keys):
        rows = await pool.fetch(f"SELECT key FROM {schema}.settled WHERE key = ANY($1)", list(keys))
        return [r["key"] for r in rows]

    waiter = Waiter(pool, channel, settled, poll_interval=0.1)
    loops = Supervisor(first_delay=0.1, max_delay=1.0)
    loops.start("waiter", waiter.run)
    try:
        await eventually(lambda: asyncio.sleep(0, waiter.listening), bool, what="listening")
        woken = waiter.expect("a")
        await pool.execute("SELECT pg_notify($1, 'a')", channel)
        await waiter.wait_all({"a": woken}, 20)
        assert woken.done(), "a notification wakes the waiting request"

        # The listener's connection dies while a request waits: its outcome, committed
        # without a notification anyone hears, is found by looking.
        waiting = waiter.expect("b")
        started = time.monotonic()
        wait = asyncio.create_task(waiter.wait_all({"b": waiting}, 30))
        assert await kill_backends(dsn, name) >= 1
        await execute(dsn, f"INSERT INTO {schema}.settled VALUES ('b')")
        await wait
        assert waiting.done() and time.monotonic() - started < 20, "not left to its bound"

        await eventually(
            lambda: asyncio.sleep(0, (loops.loops["waiter"].failures, waiter.listening)),
            lambda s: s[0] >= 1 and s[1],
            what="listening again",
        )
        woken = waiter.expect("c")
        await pool.execute("SELECT pg_notify($1, 'c')", channel)
        await waiter.wait_all({"c": woken}, 20)
        assert woken.done(), "notifications wake requests again"
    finally:
        await loops.stop()
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.close()


async def test_the_relay_publishes_again_after_its_connection_is_killed(
    infrastructure,
    tmp_path: Path,
):
    dsn, bootstrap = infrastructure.database_url, infrastructure.bootstrap_servers
    name, schema = ref("relay"), ref("relaykill").replace("-", "_")
    key = f"{uuid.uuid4()}:relay"
    pool = await create_pool(dsn, application_name=name)
    producer = make_producer(bootstrap)
    await producer.start()
    loops = Supervisor(first_delay=0.1, max_delay=1.0)

    async def add(payload: bytes) -> None:
        await execute(
            dsn, outbox_insert(schema, 1), [uuid.uuid4()], [TOPIC], [key], [payload], [None], [None]
        )

    async def published() -> list[bytes]:
        return [r.value for r in await read_all(bootstrap, TOPIC) if r.key == key.encode()]

    try:
        await migrate(pool, schema, tmp_path)
        loops.start("outbox_relay", OutboxRelay(pool, schema, producer, poll_interval=0.2).run)
        await add(b'{"n": 1}')
        await eventually(
            published,
            lambda found: len(found) == 1,
            timeout=30,
            interval=0.2,
            what="the first event published",
        )
        assert await kill_backends(dsn, name) >= 1
        await eventually(
            lambda: asyncio.sleep(0, loops.loops["outbox_relay"].failures),
            lambda n: n >= 1,
            what="the relay noticing",
        )
        await add(b'{"n": 2}')
        found = await eventually(
            published,
            lambda found: len(found) >= 2,
            timeout=30,
            interval=0.2,
            what="the second event published",
        )
        assert found[-1] == b'{"n": 2}'
        await eventually(
            lambda: pool.fetchval(f"SELECT count(*) FROM {schema}.outbox"),
            lambda left: left == 0,
            what="the outbox to empty",
        )
    finally:
        await loops.stop()
        await producer.stop()
        await pool.close()
