"""Kafka-side entry points: the sale's fate decides its fulfillments."""

from typing import Any, cast

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.inbox import Apply
from fulfilkit.received import Event
from fulfilkit.service import Consumer, Runtime
from fulfilment.resources import FulfilmentResources
from fulfilment.settings import FulfilmentSettings
from fulfilment.usecases import follow_sales


def sale_events(runtime: Runtime[FulfilmentResources]) -> Apply:
    settings = cast(FulfilmentSettings, runtime.settings)

    async def apply(conn: asyncpg.Connection, batch: list[Event[Any]]) -> None:
        await follow_sales(conn, settings, batch)

    return apply


def moves_fulfillments(event: Event[Any]) -> bool:
    """A claim, a shipment or a cancellation; other status changes need no work here."""
    return event.type == c.SALE_CANCELED or event.data.status in ("in_fulfillment", "shipped")


CONSUMERS = [
    Consumer(
        topics=[c.SALES_TOPIC],
        event_types=[c.SALE_STATUS_CHANGED, c.SALE_CANCELED],
        apply=sale_events,
        relevant=moves_fulfillments,
    ),
]
