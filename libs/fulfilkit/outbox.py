"""Transactional outbox: events are written with the state change, a relay publishes them."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from fulfilkit.contracts import TOPIC_OF_TYPE
from fulfilkit.events import CONTENT_TYPE, CloudEvent
from fulfilkit.leader import leadership

log = logging.getLogger(__name__)

Keyed = tuple[str, CloudEvent]


def channel(schema: str) -> str:
    return f"{schema}_outbox"


async def add_events(conn: asyncpg.Connection, schema: str, events: Sequence[Keyed]) -> None:
    """Write events in the caller's transaction; they are published only if it commits."""
    if not events:
        return
    await conn.execute(
        f"WITH added AS (INSERT INTO {schema}.outbox (event_id, topic, key, payload)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[]) RETURNING 1)"
        " SELECT pg_notify($5, '')",
        [e.id for _, e in events],
        [TOPIC_OF_TYPE[e.type] for _, e in events],
        [k for k, _ in events],
        [e.to_bytes() for _, e in events],
        channel(schema),
    )


def outbox_row(keyed: Keyed) -> tuple[Any, str, str, bytes]:
    """(event_id, topic, key, payload): an outbox row, for callers that insert it within a
    statement of their own (as `orders` does to create a sale in one round trip)."""
    key, event = keyed
    return event.id, TOPIC_OF_TYPE[event.type], key, event.to_bytes()


class OutboxRelay:
    """Publishes unpublished outbox rows in order, in batches; one active relay per schema.

    Rows are marked published only after Kafka acknowledged them, so a crash in between
    republishes them (at least once); consumers deduplicate by event id.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retention: timedelta = timedelta(hours=1),
        after_publish: Callable[[list[int]], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        self._after_publish = after_publish
        self._wake = asyncio.Event()

    async def run(self) -> None:
        async with leadership(self._pool, f"outbox:{self._schema}", channel(self._schema),
                              self._on_notify, self._poll_interval):
            await self._loop()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        rounds = 0
        while True:
            self._wake.clear()
            try:
                published = await self.publish_batch()
            except Exception as exc:  # the relay must outlive any outage
                log.warning("outbox relay for %s failed, retrying: %s", self._schema, exc)
                published = 0
                await asyncio.sleep(self._poll_interval)
            rounds += 1
            if rounds % 1000 == 0:
                await self.prune()
            if published < self._batch_size:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def publish_batch(self) -> int:
        rows = await self._pool.fetch(
            f"SELECT seq, topic, key, payload, event_id FROM {self._schema}.outbox"
            " WHERE published_at IS NULL ORDER BY seq LIMIT $1",
            self._batch_size,
        )
        if not rows:
            return 0
        sends = [
            await self._producer.send(
                r["topic"],
                value=r["payload"],
                key=r["key"].encode(),
                headers=[("content-type", CONTENT_TYPE.encode())],
            )
            for r in rows
        ]
        await asyncio.gather(*sends)
        seqs = [r["seq"] for r in rows]
        if self._after_publish is not None:
            await self._after_publish(seqs)
        await self._pool.execute(self._mark_published_sql(seqs))
        return len(rows)

    def _mark_published_sql(self, seqs: list[int]) -> str:
        # One round trip, committed without waiting for the WAL flush: a mark lost in a
        # PostgreSQL crash only publishes those rows again, which consumers deduplicate.
        # The sequence numbers are integers from the database, safe to inline.
        return (
            "SET LOCAL synchronous_commit = off;"
            f" UPDATE {self._schema}.outbox SET published_at = now()"
            f" WHERE seq = ANY('{{{','.join(str(int(s)) for s in seqs)}}}'::bigint[])"
        )

    async def prune(self) -> None:
        await self._pool.execute(
            f"DELETE FROM {self._schema}.outbox WHERE published_at < now() - $1::interval",
            self._retention,
        )
