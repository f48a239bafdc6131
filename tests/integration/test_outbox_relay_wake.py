"""A commit that adds outbox rows wakes the relay leading that outbox: in process, without a
`NOTIFY`, when the relay leads from the committing process and the commit is known there (a
statement on its own, or a transaction inside `until_commit`); by a `NOTIFY` otherwise (the
lock held elsewhere, a transaction the process cannot see commit, a relay that lost its
lock between the statement and the commit). Every row is published either way, long before
the relay would look again by itself."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import create_pool, migrate
from fulfilkit.kafka import make_producer
from fulfilkit.metrics import until_commit
from fulfilkit.outbox import OutboxRelay, add_events, channel, leads
from tests.support import eventually

pytestmark = pytest.mark.integration

# No service consumes dead-letter topics: rows sent there touch nothing else in the suite.
TOPIC = c.dlq_topic(c.SALES_TOPIC)
ON_DLQ = "test.wake_on_dlq"
# Far beyond the test's waits: a row found in time was found because the relay was woken.
IDLE_CHECK = 60.0


class OnTopic:
    def __init__(self) -> None:
        self.id = uuid.uuid4()
        self.type = ON_DLQ

    def to_bytes(self) -> bytes:
        return b"{}"


@dataclass
class Setup:
    url: str
    pool: asyncpg.Pool
    schema: str
    relay: OutboxRelay
    notified: list[str] = field(default_factory=list)

    async def add(self, conn: asyncpg.Connection) -> None:
        key = f"{uuid.uuid4()}:sale:{uuid.uuid4()}"
        await add_events(conn, self.schema, [(key, OnTopic())])  # type: ignore[list-item]

    async def published(self) -> None:
        """Until the outbox is empty: every row published (and deleted)."""
        await eventually(
            lambda: self.pool.fetchval(f"SELECT count(*) FROM {self.schema}.outbox"),
            lambda left: left == 0,
            timeout=10,
            what="the outbox to empty",
        )


@pytest.fixture
async def setup(infrastructure, tmp_path: Path, monkeypatch) -> AsyncIterator[Setup]:
    schema = f"wake_{uuid.uuid4().hex[:10]}"
    monkeypatch.setitem(c.TOPIC_OF_TYPE, ON_DLQ, TOPIC)
    pool = await create_pool(infrastructure.database_url)
    producer = make_producer(infrastructure.bootstrap_servers)
    await producer.start()
    await migrate(pool, schema, tmp_path)
    listener = await asyncpg.connect(infrastructure.database_url)
    found = Setup(
        infrastructure.database_url,
        pool,
        schema,
        OutboxRelay(pool, schema, producer, idle_check=IDLE_CHECK),
    )
    await listener.add_listener(channel(schema), lambda *_: found.notified.append("notify"))
    try:
        yield found
    finally:
        await listener.close()
        await producer.stop()
        await pool.close()


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def no_notification(setup: Setup) -> None:
    await asyncio.sleep(0.2)  # what PostgreSQL would have delivered by now, it has
    assert setup.notified == []


async def test_a_commit_in_the_leading_process_wakes_its_relay_without_a_notify(setup: Setup):
    async with running(setup.relay):
        await eventually(lambda: _leads(setup.schema), bool, what="the relay to lead")
        async with setup.pool.acquire() as conn:  # a statement on its own
            await setup.add(conn)
        await setup.published()
        with until_commit():  # a transaction whose commit the process sees
            async with setup.pool.acquire() as conn, conn.transaction():
                await setup.add(conn)
                await setup.add(conn)
        await setup.published()
        await no_notification(setup)


async def test_a_transaction_the_process_cannot_see_commit_still_notifies(setup: Setup):
    async with running(setup.relay):
        await eventually(lambda: _leads(setup.schema), bool, what="the relay to lead")
        async with setup.pool.acquire() as conn, conn.transaction():
            await setup.add(conn)
        await setup.published()
        await eventually(lambda: _count(setup.notified), lambda n: n >= 1, what="a notification")


async def test_rows_for_a_relay_leading_elsewhere_notify_it(setup: Setup):
    holder = await asyncpg.connect(setup.url)  # another process's leader
    try:
        lock = f"outbox:{setup.schema}"
        assert await holder.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock)
        async with running(setup.relay):
            await asyncio.sleep(0.1)
            assert not leads(setup.schema)
            with until_commit():
                async with setup.pool.acquire() as conn, conn.transaction():
                    await setup.add(conn)
            await eventually(
                lambda: _count(setup.notified), lambda n: n >= 1, what="a notification"
            )
            await holder.execute("SELECT pg_advisory_unlock_all()")  # it goes: ours leads
            await setup.published()
    finally:
        await holder.close()


async def test_a_relay_that_lost_its_lock_before_the_commit_notifies_for_the_next(
    setup: Setup,
):
    async with running(setup.relay):
        await eventually(lambda: _leads(setup.schema), bool, what="the relay to lead")
        with until_commit():
            async with setup.pool.acquire() as conn, conn.transaction():
                await setup.add(conn)  # counting on the relay that leads now
                await conn.execute(  # its connection (and its lock) go before the commit
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND objid = hashtext($1)::oid",
                    f"outbox:{setup.schema}",
                )
                await eventually(
                    lambda: _leads(setup.schema), lambda led: not led, what="the lock to go"
                )
        await eventually(lambda: _count(setup.notified), lambda n: n >= 1, what="a notification")


async def _leads(schema: str) -> bool:
    return leads(schema)


async def _count(notified: list[str]) -> int:
    return len(notified)
