"""Stock's events into its outbox, in the caller's transaction: CloudEvents and events already
encoded (`stock.events.Encoded`) alike, through `fulfilkit.outbox`."""

from collections.abc import Sequence

import asyncpg

from fulfilkit import outbox
from stock.store._sql import S


async def add_events(
    conn: asyncpg.Connection, events: Sequence[tuple[str, outbox.Publishable]]
) -> None:
    """Write events (with their Kafka keys) in the caller's transaction; they are published
    only if it commits."""
    await outbox.add_events(conn, S, events)


async def copy_events(
    conn: asyncpg.Connection, events: Sequence[tuple[str, outbox.Publishable]]
) -> None:
    """`add_events` by binary COPY, for a reservation batch's hundreds of events."""
    await outbox.copy_events(conn, S, events)
