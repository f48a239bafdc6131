"""The consumer's inbox, for the events whose effect is not idempotent on its own."""

from uuid import UUID

import asyncpg

from fulfilkit.inbox import Unrecorded


async def record(conn: asyncpg.Connection, unrecorded: Unrecorded) -> set[UUID]:
    """Record these events as applied, in the caller's transaction: those not recorded
    before, which the caller applies (and only those)."""
    if not unrecorded.ids:
        return set()
    rows = await conn.fetch(unrecorded.cte(1), *unrecorded.params())
    return {r["event_id"] for r in rows}
