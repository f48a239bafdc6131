"""Events in, deliveries out: every subscribed endpoint of the event's tenant gets one."""

import asyncpg

from fulfilkit.events import CloudEvent
from fulfilkit.inbox import Apply
from fulfilkit.service import Runtime
from webhooks import store
from webhooks.domain import plan_deliveries, webhook_id, webhook_payload


async def record_deliveries(conn: asyncpg.Connection, events: list[CloudEvent]) -> int:
    """Queue the batch's deliveries in the inbox's transaction; wake the dispatchers."""
    subscriptions = await store.subscriptions(conn, (e.tenantid for e in events))
    planned = plan_deliveries(events, subscriptions)
    if not planned:
        return 0
    payloads = {e.id: webhook_payload(e.type, e.time, e.data) for e, _ in planned}
    rows = [
        (
            e.tenantid,
            s.endpoint_id,
            e.id,
            e.type,
            webhook_id(e.id, s.endpoint_id),
            payloads[e.id],
            e.subject,
            e.time,
        )
        for e, s in planned
    ]
    inserted = await store.insert_deliveries(conn, rows)
    if inserted:
        await store.notify_dispatcher(conn)
    return inserted


def deliveries_from_events(_: Runtime) -> Apply:
    async def apply(conn: asyncpg.Connection, events: list[CloudEvent]) -> None:
        await record_deliveries(conn, events)

    return apply
