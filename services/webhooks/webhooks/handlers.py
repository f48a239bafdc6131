"""Events in, deliveries out: every subscribed endpoint of the event's tenant gets one."""

from typing import Any

import asyncpg

from fulfilkit.contracts import (
    EVENT_TYPES,
    FULFILLMENT_TOPIC,
    SALES_TOPIC,
    STOCK_TOPIC,
    WEBHOOKS_TOPIC,
)
from fulfilkit.inbox import RecordingApply, Unrecorded
from fulfilkit.received import Event
from fulfilkit.service import Consumer, Runtime
from webhooks.resources import Resources
from webhooks.usecases.deliveries import record_deliveries


def deliveries_from_events(runtime: Runtime[Resources]) -> RecordingApply:
    async def apply(
        conn: asyncpg.Connection, events: list[Event[Any]], unrecorded: Unrecorded
    ) -> None:
        await record_deliveries(conn, events, runtime.resources.handoff, unrecorded)

    return apply


CONSUMERS = [
    Consumer(
        topics=[SALES_TOPIC, STOCK_TOPIC, FULFILLMENT_TOPIC, WEBHOOKS_TOPIC],
        event_types=EVENT_TYPES,
        apply=deliveries_from_events,
        records_inbox=True,  # only events some endpoint wants are recorded
    )
]
