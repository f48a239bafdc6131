"""Stock's events into its outbox, in the caller's transaction, as `fulfilkit.outbox` writes
them: from events already encoded (`stock.events.Encoded`) as well as from CloudEvents."""

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

import asyncpg

from fulfilkit.contracts import TOPIC_OF_TYPE
from fulfilkit.outbox import channel, outbox_insert
from fulfilkit.tracing import outgoing_traceparents
from stock.store._sql import S


class Event(Protocol):
    """What the outbox keeps of an event: its id, its type and its bytes."""

    @property
    def id(self) -> UUID: ...

    @property
    def type(self) -> str: ...

    def to_bytes(self) -> bytes: ...


ADD_EVENTS = f"WITH added AS ({outbox_insert(S, 1)} RETURNING 1) SELECT pg_notify($7, '')"


async def add_events(conn: asyncpg.Connection, events: Sequence[tuple[str, Event]]) -> None:
    """Write events (with their Kafka keys) in the caller's transaction; they are published
    only if it commits."""
    if not events:
        return
    keys = [key for key, _ in events]
    await conn.execute(
        ADD_EVENTS,
        [e.id for _, e in events],
        [TOPIC_OF_TYPE[e.type] for _, e in events],
        keys,
        [e.to_bytes() for _, e in events],
        [e.type for _, e in events],
        outgoing_traceparents(keys),
        channel(S),
    )
