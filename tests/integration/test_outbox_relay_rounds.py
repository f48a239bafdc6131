"""A relay that keeps up deletes what it published with the query of its next round, not with
a round of its own: a commit a moment after another costs one round, not two. Every row is
published, in order, and the outbox is empty moments after the last commit."""

import asyncio
import contextlib
import uuid
from pathlib import Path

import asyncpg
import pytest

from fulfilkit import contracts as c
from fulfilkit.db import create_pool, migrate
from fulfilkit.kafka import make_producer
from fulfilkit.outbox import OutboxRelay, add_events
from tests.kafka_tools import read_all
from tests.support import eventually, ref

pytestmark = pytest.mark.integration

# No service consumes dead-letter topics: rows sent there touch nothing else in the suite.
TOPIC = c.dlq_topic(c.SALES_TOPIC)
ON_DLQ = "test.on_dlq"  # a type of the test's own, published there


class Counted(OutboxRelay):
    """Counts its rounds that published nothing (that only deleted, or only looked)."""

    empty = 0

    async def publish_batch(self, db: asyncpg.Connection | asyncpg.Pool | None = None) -> int:
        published = await super().publish_batch(db)
        self.empty += not published
        return published


class OnTopic:
    """An event whose bytes go to the dead-letter topic, where nothing consumes them."""

    def __init__(self, n: int) -> None:
        self.id = uuid.uuid4()
        self.type = ON_DLQ
        self.n = n

    def to_bytes(self) -> bytes:
        return f'{{"n":{self.n}}}'.encode()


async def test_commits_close_together_cost_one_round_each_and_leave_nothing(
    infrastructure, tmp_path: Path, monkeypatch
):
    schema = ref("rounds").replace("-", "_")
    key = f"{uuid.uuid4()}:sale:{uuid.uuid4()}"
    monkeypatch.setitem(c.TOPIC_OF_TYPE, ON_DLQ, TOPIC)
    pool = await create_pool(infrastructure.database_url)
    producer = make_producer(infrastructure.bootstrap_servers)
    await producer.start()
    relay = Counted(pool, schema, producer, poll_interval=0.2)
    await migrate(pool, schema, tmp_path)
    running = asyncio.create_task(relay.run())
    commits = 8
    try:
        await eventually(lambda: _empty(relay), lambda n: n >= 1, what="the relay to start")
        before = relay.empty
        for n in range(commits):  # one commit each, each a moment after the last
            event = OnTopic(n)
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, schema, [(key, event)])  # type: ignore[list-item]
            await asyncio.sleep(0.02)

        async def published() -> list[bytes]:
            return [
                r.value
                for r in await read_all(infrastructure.bootstrap_servers, TOPIC)
                if r.key == key.encode()
            ]

        values = await eventually(
            published, lambda found: len(found) >= commits, what="every row on the topic"
        )
        assert values == [f'{{"n":{n}}}'.encode() for n in range(commits)]
        await eventually(
            lambda: pool.fetchval(f"SELECT count(*) FROM {schema}.outbox"),
            lambda left: left == 0,
            what="the outbox to empty",
        )
        # before, every round that published was followed by one that only deleted (8); now
        # the next commit's round deletes, and one round after the last
        assert relay.empty - before <= 2, relay.empty - before
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await producer.stop()
        await pool.close()


async def _empty(relay: Counted) -> int:
    return relay.empty
