"""Kafka-side entry points: the sale's fate decides its fulfillments.

These also reconcile: if this service died between `orders` claiming a sale and the
fulfillment being written, or between `orders` shipping it and the fulfillment saying so,
the sale's own event finishes the job.
"""

from uuid import UUID

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilkit.inbox import Apply
from fulfilkit.service import Consumer, Runtime
from fulfilment import store
from fulfilment.domain import Fulfillment
from fulfilment.settings import FulfilmentSettings
from fulfilment.shipping import ensure_fulfillments, movable, move


def sale_events(runtime: Runtime) -> Apply:
    settings: FulfilmentSettings = runtime.settings  # type: ignore[assignment]

    async def apply(conn: asyncpg.Connection, batch: list[CloudEvent]) -> None:
        claimed: dict[UUID, list[dict]] = {}
        for event in batch:
            if event.type == c.SALE_STATUS_CHANGED and event.data["status"] == "in_fulfillment":
                claimed.setdefault(event.tenantid, []).append(event.data)
        for tenant, sales in sorted(claimed.items()):
            await ensure_fulfillments(conn, settings, tenant, sales)
        targets: dict[tuple[UUID, UUID], str] = {}  # the batch's last word on each sale
        for event in batch:
            if event.type == c.SALE_CANCELED:
                targets[(event.tenantid, UUID(event.data["id"]))] = "canceled"
            elif event.data["status"] == "shipped":
                targets[(event.tenantid, UUID(event.data["id"]))] = "shipped"
        if targets:
            await _move_live(conn, targets)

    return apply


async def _move_live(conn: asyncpg.Connection, targets: dict[tuple[UUID, UUID], str]) -> None:
    """Move the sales' live fulfillments to their targets.

    Usually the request that shipped or canceled the sale has already moved them, so a plain
    read decides first and only what still has to move is locked (one query for the batch)
    and decided again. That is safe because statuses only move forward: a fulfillment that
    cannot move to its target now cannot later either.
    """

    def to_move(fulfillments: list[Fulfillment]) -> dict[str, list[Fulfillment]]:
        return {
            target: movable(
                [f for f in fulfillments if targets[(f.tenant_id, f.sale)] == target], target
            )
            for target in ("shipped", "canceled")
        }

    pending = to_move(await store.live_for_sales(conn, list(targets)))
    candidates = {(f.tenant_id, f.sale) for chosen in pending.values() for f in chosen}
    if not candidates:
        return
    locked = to_move(await store.live_for_sales(conn, sorted(candidates), lock=True))
    for target, chosen in locked.items():
        await move(conn, chosen, target)


def moves_fulfillments(event: CloudEvent) -> bool:
    """A claim, a shipment or a cancellation; other status changes need no work here."""
    return event.type == c.SALE_CANCELED or event.data.get("status") in (
        "in_fulfillment",
        "shipped",
    )


CONSUMERS = [
    Consumer(
        topics=[c.SALES_TOPIC],
        event_types=[c.SALE_STATUS_CHANGED, c.SALE_CANCELED],
        apply=sale_events,
        relevant=moves_fulfillments,
    ),
]
