"""Kafka-side entry points: sale events in, one use-case call per batch."""

from typing import Any

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.inbox import Apply
from fulfilkit.received import Event
from fulfilkit.service import Consumer, Runtime
from stock.domain import SaleToReserve
from stock.usecases.reservations import SaleChange, SaleChangeKind, reserve_sales

# A status change reaches `apply` only when it is to shipped (`changes_stock`).
KIND_OF_TYPE: dict[str, SaleChangeKind] = {
    c.SALE_CREATED: "created",
    c.SALE_CANCELED: "canceled",
    c.SALE_STATUS_CHANGED: "shipped",
}


def changes_stock(event: Event[Any]) -> bool:
    """Of a sale's status changes only shipping commits stock; the others need no work."""
    return event.type != c.SALE_STATUS_CHANGED or event.data.status == "shipped"


def sale_change(event: Event[c.SaleSnapshot]) -> SaleChange:
    sale = event.data
    return SaleChange(
        KIND_OF_TYPE[event.type],
        SaleToReserve(
            sale=sale.id,
            sale_id=sale.sale_id,
            tenant_id=event.tenantid,
            location_id=sale.location_id,
            lines=tuple((line.sku, line.quantity) for line in sale.lines),
            version=sale.version,
            allow_split=sale.allow_split,
        ),
    )


def sale_events(runtime: Runtime[None]) -> Apply:
    async def apply(conn: asyncpg.Connection, batch: list[Event[Any]]) -> None:
        await reserve_sales(conn, [sale_change(e) for e in batch if changes_stock(e)])

    return apply


CONSUMERS = [
    Consumer(
        topics=[c.SALES_TOPIC],
        event_types=[c.SALE_CREATED, c.SALE_CANCELED, c.SALE_STATUS_CHANGED],
        apply=sale_events,
        relevant=changes_stock,
    ),
]
