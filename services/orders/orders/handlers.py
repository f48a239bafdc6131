"""Kafka-side entry points: reservation and fulfilment outcomes in, sale changes out."""

from uuid import UUID

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilkit.inbox import Apply
from fulfilkit.service import Consumer, Runtime
from orders import store
from orders.changes import save_changes
from orders.domain import StatusChange, apply_reservation_outcome, deliver

ACTOR = "orders:events"
RESERVATION_OUTCOMES = (c.STOCK_RESERVED, c.STOCK_RESERVATION_FAILED)
RESERVATION_ENDINGS = (c.STOCK_RELEASED, c.STOCK_COMMITTED)


def _sale_of(event: CloudEvent) -> UUID:
    """Reservation and fulfilment events all name their sale's platform id in `data.sale`."""
    return UUID(str(event.data["sale"]))


async def apply_events(conn: asyncpg.Connection, batch: list[CloudEvent]) -> None:
    sales = await store.lock_sales(conn, (_sale_of(e) for e in batch))
    changes: list[StatusChange] = []
    for event in batch:
        sale = sales.get(_sale_of(event))
        if sale is None or sale.tenant_id != event.tenantid:
            continue
        if event.type in RESERVATION_OUTCOMES:
            change = apply_reservation_outcome(sale, event.type == c.STOCK_RESERVED, event.data)
            if change is not None:
                changes.append(change)
        elif event.type in RESERVATION_ENDINGS:
            sale.reservation = event.data  # as it ended: released or committed
        elif event.type == c.FULFILLMENT_CREATED:
            if all(f["id"] != event.data["id"] for f in sale.fulfillments):
                sale.fulfillments = [*sale.fulfillments, event.data]
        elif event.type == c.FULFILLMENT_STATUS_CHANGED:
            sale.fulfillments = [
                event.data if f["id"] == event.data["id"] else f for f in sale.fulfillments
            ]
            if event.data["status"] == "delivered" and (change := deliver(sale)) is not None:
                changes.append(change)
    await save_changes(conn, list(sales.values()), changes, ACTOR)


def outcome_events(runtime: Runtime) -> Apply:
    return apply_events


CONSUMERS = [
    Consumer(
        topics=[c.STOCK_TOPIC, c.FULFILLMENT_TOPIC],
        event_types=[
            *RESERVATION_OUTCOMES,
            *RESERVATION_ENDINGS,
            c.FULFILLMENT_CREATED,
            c.FULFILLMENT_STATUS_CHANGED,
        ],
        apply=outcome_events,
    ),
]
