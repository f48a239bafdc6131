"""Kafka-side entry points: the sale's fate decides its fulfillments."""

from typing import Any, cast

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.inbox import Apply, Relevant
from fulfilkit.received import Event
from fulfilkit.service import Consumer, Runtime
from fulfilment.resources import FulfilmentResources
from fulfilment.settings import FulfilmentSettings
from fulfilment.settled import Settled
from fulfilment.usecases import follow_sales


def sale_events(runtime: Runtime[FulfilmentResources]) -> Apply:
    settings = cast(FulfilmentSettings, runtime.settings)

    async def apply(conn: asyncpg.Connection, batch: list[Event[Any]]) -> None:
        await follow_sales(conn, settings, batch)

    return apply


def moves_fulfillments(event: Event[Any]) -> bool:
    """A claim, a shipment or a cancellation; other status changes need no work here."""
    return event.type == c.SALE_CANCELED or event.data.status in ("in_fulfillment", "shipped")


def needs_work(settled: Settled) -> Relevant:
    """`moves_fulfillments`, less the claims and shipments whose fulfillments this process
    has already committed as the event says (`fulfilment.settled`)."""

    def relevant(event: Event[Any]) -> bool:
        return moves_fulfillments(event) and not settled.done(event)

    return relevant


def consumers(settled: Settled) -> list[Consumer]:
    return [
        Consumer(
            topics=[c.SALES_TOPIC],
            event_types=[c.SALE_STATUS_CHANGED, c.SALE_CANCELED],
            apply=sale_events,
            relevant=needs_work(settled),
        ),
    ]
