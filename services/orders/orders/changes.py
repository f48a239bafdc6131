"""Writes sale changes together with their history, their events and the wake-up for waiters."""

from collections.abc import Sequence

import asyncpg

from fulfilkit.outbox import add_events
from orders import events, store
from orders.domain import Sale, StatusChange

STATUS_CHANNEL = "orders_sale_status"


async def save_changes(
    conn: asyncpg.Connection, sales: Sequence[Sale], changes: Sequence[StatusChange], actor: str
) -> None:
    await store.save_sales(conn, sales)
    await store.insert_history(conn, changes, actor, STATUS_CHANNEL)
    await add_events(conn, "orders", [k for ch in changes for k in events.status_changed(ch)])
