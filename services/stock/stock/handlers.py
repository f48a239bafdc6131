"""Kafka-side entry points: sale events in, reservations and stock events out."""

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilkit.inbox import Apply
from fulfilkit.service import Consumer, Runtime
from stock.reservations import apply_sale_events, sale_event


def sale_events(runtime: Runtime) -> Apply:
    async def apply(conn: asyncpg.Connection, batch: list[CloudEvent]) -> None:
        meaningful = [se for se in map(sale_event, batch) if se is not None]
        await apply_sale_events(conn, meaningful)

    return apply


def changes_stock(event: CloudEvent) -> bool:
    """Of a sale's status changes only shipping commits stock; the others need no work."""
    return event.type != c.SALE_STATUS_CHANGED or event.data.get("status") == "shipped"


CONSUMERS = [
    Consumer(
        topics=[c.SALES_TOPIC],
        event_types=[c.SALE_CREATED, c.SALE_CANCELED, c.SALE_STATUS_CHANGED],
        apply=sale_events,
        relevant=changes_stock,
    ),
]
