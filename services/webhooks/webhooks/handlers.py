"""Events in, deliveries out: every subscribed endpoint of the event's tenant gets one."""

from collections.abc import Sequence
from typing import Any

import asyncpg

from fulfilkit.contracts import (
    EVENT_TYPES,
    FULFILLMENT_TOPIC,
    SALES_TOPIC,
    STOCK_TOPIC,
    WEBHOOKS_TOPIC,
)
from fulfilkit.inbox import Unrecorded
from fulfilkit.received import Envelope, Event
from fulfilkit.service import Consumer, Runtime
from webhooks.resources import Resources
from webhooks.usecases.deliveries import Screened, record_deliveries, screen


class DeliveriesFromEvents:
    """The inbox's apply (a `RecordingApply`) and its `Screening`: an event whose tenant has
    no enabled endpoint subscribed to its type is skipped before it is validated, with no
    transaction (`screen`); the others are planned with the subscriptions the screen of
    their batch read (the last one: the inbox applies a batch right after screening it)."""

    def __init__(self, runtime: Runtime[Resources]) -> None:
        self._runtime = runtime
        self._screened: Screened | None = None

    async def __call__(
        self, conn: asyncpg.Connection, events: list[Event[Any]], unrecorded: Unrecorded
    ) -> None:
        read = self._screened.subscriptions_for(events) if self._screened else None
        handoff = self._runtime.resources.handoff
        await record_deliveries(conn, events, handoff, unrecorded, read)

    async def wanted(self, pool: asyncpg.Pool, envelopes: Sequence[Envelope]) -> list[bool]:
        self._screened = await screen(pool, envelopes)
        return self._screened.wanted


def deliveries_from_events(runtime: Runtime[Resources]) -> DeliveriesFromEvents:
    return DeliveriesFromEvents(runtime)


CONSUMERS = [
    Consumer(
        topics=[SALES_TOPIC, STOCK_TOPIC, FULFILLMENT_TOPIC, WEBHOOKS_TOPIC],
        event_types=EVENT_TYPES,
        apply=deliveries_from_events,
        records_inbox=True,  # only events some endpoint wants are recorded
    )
]
