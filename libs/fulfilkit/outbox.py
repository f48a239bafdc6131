"""Transactional outbox: events are written with the state change, a relay publishes them."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from fulfilkit.contracts import TOPIC_OF_TYPE
from fulfilkit.events import CONTENT_TYPE, CloudEvent
from fulfilkit.leader import leadership

log = logging.getLogger(__name__)

Keyed = tuple[str, CloudEvent]

# The relay's connection is gone (and its leadership with it): start over.
CONNECTION_ERRORS = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)


def channel(schema: str) -> str:
    return f"{schema}_outbox"


def outbox_insert(schema: str, first: int, only_if: str | None = None) -> str:
    """SQL that inserts the events passed as `outbox_arrays(...)` at parameters `$first` to
    `$first+3`: for a data-modifying CTE, so that a caller writes its state change and its
    events in one statement. `only_if` conditions the insert (`EXISTS (SELECT FROM saved)`)."""
    p = first
    sql = (
        f"INSERT INTO {schema}.outbox (event_id, topic, key, payload) SELECT e.* FROM"
        f" unnest(${p}::uuid[], ${p + 1}::text[], ${p + 2}::text[], ${p + 3}::bytea[])"
        " AS e(event_id, topic, key, payload)"
    )
    return f"{sql} WHERE {only_if}" if only_if else sql


def outbox_arrays(events: Sequence[Keyed]) -> tuple[list[Any], list[str], list[str], list[bytes]]:
    """The four arrays `outbox_insert` reads: event ids, topics, keys, payloads."""
    return (
        [e.id for _, e in events],
        [TOPIC_OF_TYPE[e.type] for _, e in events],
        [k for k, _ in events],
        [e.to_bytes() for _, e in events],
    )


async def add_events(conn: asyncpg.Connection, schema: str, events: Sequence[Keyed]) -> None:
    """Write events in the caller's transaction; they are published only if it commits."""
    if not events:
        return
    await conn.execute(
        f"WITH added AS ({outbox_insert(schema, 1)} RETURNING 1) SELECT pg_notify($5, '')",
        *outbox_arrays(events), channel(schema),
    )


class OutboxRelay:
    """Publishes unpublished outbox rows in order, in batches; one active relay per schema.

    Rows are deleted only after Kafka acknowledged them, so a crash in between republishes
    them (at least once); consumers deduplicate by event id. The delete of one batch travels
    with the query for the next, so a busy relay spends one database round trip per batch.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        linger: float = 0.0,
        after_publish: Callable[[list[int]], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._linger = linger
        self._after_publish = after_publish
        self._wake = asyncio.Event()
        self._sent: list[int] = []  # acknowledged by Kafka, deleted with the next query
        self._next_batch_sql = (
            f"WITH sent AS (DELETE FROM {schema}.outbox WHERE seq = ANY($1::bigint[]))"
            f" SELECT seq, topic, key, payload, event_id FROM {schema}.outbox"
            " WHERE seq <> ALL($1::bigint[]) ORDER BY seq LIMIT $2"
        )

    async def run(self) -> None:
        """Publish for as long as this replica holds the relay's lock; if its connection is
        lost (and the lock with it), queue up for the lock again."""
        while True:
            try:
                async with leadership(self._pool, f"outbox:{self._schema}",
                                      channel(self._schema), self._on_notify,
                                      self._poll_interval) as conn:
                    await self._loop(conn)
            except CONNECTION_ERRORS as exc:
                log.warning("outbox relay for %s lost its database connection: %r",
                            self._schema, exc)
                self._sent = []  # whoever leads next publishes them again
                await asyncio.sleep(self._poll_interval)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _loop(self, conn: asyncpg.Connection) -> None:
        # Only this connection's writes, which only delete published rows, commit without
        # waiting for the WAL flush: a delete lost in a PostgreSQL crash republishes those
        # rows, which consumers deduplicate.
        await conn.execute("SET synchronous_commit = off")
        try:
            while True:
                self._wake.clear()
                try:
                    published = await self.publish_batch(conn)
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:  # Kafka unreachable, say: the relay outlives it
                    log.warning("outbox relay for %s failed, retrying: %s", self._schema, exc)
                    published = 0
                    await asyncio.sleep(self._poll_interval)
                if not published and not self._sent:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval)
                elif self._linger and published < self._batch_size:
                    # Busy but not full: wait a moment so that the next batch is bigger (a
                    # quiet relay, woken by one commit, still publishes it at once).
                    await asyncio.sleep(self._linger)
        finally:
            with contextlib.suppress(Exception):
                await conn.execute("RESET synchronous_commit")

    async def publish_batch(self, db: asyncpg.Connection | asyncpg.Pool | None = None) -> int:
        """Delete what the previous call published, then publish the next batch; returns how
        many rows this call published (the next call deletes them)."""
        rows = await (db or self._pool).fetch(self._next_batch_sql, self._sent, self._batch_size)
        self._sent = []
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
        self._sent = seqs
        return len(rows)
