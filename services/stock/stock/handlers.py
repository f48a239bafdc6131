"""Kafka-side entry points: sale events in, reservations and stock events out."""

import uuid

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilkit.inbox import Apply
from fulfilkit.outbox import Keyed, add_events
from fulfilkit.service import Consumer, Runtime
from stock import events, store
from stock.domain import Reserved, SaleToReserve, reserve_sales

ACTOR = "stock:reservations"


def _sale_to_reserve(event: CloudEvent) -> SaleToReserve:
    sale = c.SaleSnapshot.model_validate(event.data)
    return SaleToReserve(
        sale=sale.id, sale_id=sale.sale_id, tenant_id=event.tenantid,
        location_id=sale.location_id, lines=tuple((ln.sku, ln.quantity) for ln in sale.lines),
    )


async def reserve_created_sales(conn: asyncpg.Connection, sales: list[SaleToReserve]) -> None:
    """Reserve a batch of new sales in one transaction: lock, decide, write set-wise."""
    done = await store.reserved_sales(conn, ((s.tenant_id, s.sale) for s in sales))
    sales = [s for s in sales if (s.tenant_id, s.sale) not in done]
    if not sales:
        return
    wanted = {(s.tenant_id, s.location_id, sku) for s in sales for sku, _ in s.lines}
    records = await store.lock_records(conn, wanted)
    locations = await store.known_locations(conn, {(s.tenant_id, s.location_id) for s in sales})
    skus = await store.known_skus(conn, {(t, sku) for t, _, sku in wanted})
    outcomes = reserve_sales(sales, records, locations, skus)

    successes = [(uuid.uuid4(), o) for o in outcomes if isinstance(o, Reserved)]
    entries = [e for _, o in successes for e in o.entries]
    touched = {e.record_id for e in entries}
    await store.save_records(conn, (r for r in records.values() if r.id in touched))
    await store.insert_movements(conn, entries, ACTOR)
    await store.insert_reservations(conn, successes)
    outgoing: list[Keyed] = [events.stock_changed(e) for e in entries]
    outgoing += [
        events.reserved(rid, o) for rid, o in successes
    ] + [events.reservation_failed(o) for o in outcomes if not isinstance(o, Reserved)]
    await add_events(conn, "stock", outgoing)


def sale_events(runtime: Runtime) -> Apply:
    async def apply(conn: asyncpg.Connection, batch: list[CloudEvent]) -> None:
        created = [_sale_to_reserve(e) for e in batch if e.type == c.SALE_CREATED]
        await reserve_created_sales(conn, created)

    return apply


CONSUMERS = [
    Consumer(topics=[c.SALES_TOPIC], event_types=[c.SALE_CREATED], apply=sale_events),
]
