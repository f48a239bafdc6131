"""Writes sale changes together with their history, their events and the wake-up for waiters,
in one statement."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from orders import events, store
from orders.domain import IllegalTransition, Sale, StatusChange

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


@dataclass
class Decided:
    accepted: list[Sale] = field(default_factory=list)  # changed, or already there
    refused: list[tuple[str, Sale | None]] = field(default_factory=list)  # None: no such sale


async def change_each(
    pool: asyncpg.Pool,
    tenant: UUID,
    actor: str,
    sale_ids: Sequence[str],
    decide: Callable[[Sale], StatusChange | None],
) -> Decided:
    """Lock the tenant's sales by sale_id (in id order) and let `decide` change each: it
    returns the change, None when the sale is already there, or raises IllegalTransition to
    refuse it. Every change is saved in the same transaction; both lists keep the order
    asked."""
    decided = Decided()
    changes: list[StatusChange] = []
    async with pool.acquire() as conn, conn.transaction():
        sales = await store.lock_sales_by_sale_id(conn, tenant, sale_ids)
        for sale_id in dict.fromkeys(sale_ids):
            sale = sales.get(sale_id)
            if sale is None:
                decided.refused.append((sale_id, None))
                continue
            try:
                change = decide(sale)
            except IllegalTransition:
                decided.refused.append((sale_id, sale))
                continue
            changes += [change] if change else []
            decided.accepted.append(sale)
        await save_changes(conn, [ch.sale for ch in changes], changes, actor)
    return decided
