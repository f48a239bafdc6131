"""SQL for the `webhooks` schema, by aggregate: `endpoints`, `deliveries` (as the API and the
consumer see them) and `dispatching` (the dispatcher's claims, outcomes and endpoint health).

Lock order, everywhere: endpoint rows before delivery rows.
"""

import asyncpg

SCHEMA = "webhooks"
NOTIFY_CHANNEL = "webhooks_deliveries"

Executor = asyncpg.Connection | asyncpg.Pool


async def notify_dispatcher(conn: asyncpg.Connection) -> None:
    """Wakes the dispatchers when the caller's transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
