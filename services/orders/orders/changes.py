"""Writes sale changes together with their history, their events and the wake-up for waiters,
in one statement."""

from collections.abc import Sequence

import asyncpg

from orders import events, store
from orders.domain import Sale, StatusChange

STATUS_CHANNEL = "orders_sale_status"


async def save_changes(
    conn: asyncpg.Connection, sales: Sequence[Sale], changes: Sequence[StatusChange], actor: str
) -> None:
    outgoing = [k for ch in changes for k in events.status_changed(ch)]
    await store.save(conn, sales, changes, actor, outgoing, STATUS_CHANNEL)


async def save_change_if_unchanged(
    conn: asyncpg.Connection, change: StatusChange, actor: str
) -> bool:
    """`save_changes` for one sale read without a lock; False if it changed meanwhile."""
    outgoing = events.status_changed(change)
    return await store.save_if_unchanged(conn, change, actor, outgoing, STATUS_CHANNEL)
