"""Kafka-side entry points: sale events in, one use-case call per batch.

The consumer records in its inbox only the events whose effect is not idempotent on its
own, the returns' receipts (`apply_returns_once`): reserving, releasing and committing a
sale's stock is idempotent per sale (`reserve_sales`: a reservation's status and the
version of the edit it answers decide what a replay changes, which is nothing), so a sale's
event applied twice, in the same batch again or redelivered after a crash, leaves stock as
once, without an inbox row."""

from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.inbox import RecordingApply, Unrecorded
from fulfilkit.received import Event
from fulfilkit.service import Consumer, Runtime
from stock.domain import SaleToReserve
from stock.usecases.reservations import SaleChange, SaleChangeKind, reserve_sales
from stock.usecases.returns import ReceivedReturn, ReturnLine, apply_returns_once

# A status change reaches `apply` only when it is to shipped, an edit only when it changed
# what to reserve (`changes_stock`).
KIND_OF_TYPE: dict[str, SaleChangeKind] = {
    c.SALE_CREATED: "created",
    c.SALE_UPDATED: "edited",
    c.SALE_CANCELED: "canceled",
    c.SALE_STATUS_CHANGED: "shipped",
}


# The fields of a sale whose edit changes what stock reserves for it.
RESERVATION_FIELDS = frozenset({"lines", "location_id", "allow_split"})


def changes_stock(event: Event[Any]) -> bool:
    """Of a sale's status changes only shipping commits stock, and of its edits only those
    of its lines or location reserve it again; of a return's, only its receipt brings units
    back. The others need no work."""
    if event.type == c.RETURN_STATUS_CHANGED:
        return bool(event.data.status == "received")
    if event.type == c.SALE_UPDATED:  # allow_split matters to a routed sale alone
        fields = set(event.data.changed) - ({"allow_split"} if event.data.location_id else set())
        return not RESERVATION_FIELDS.isdisjoint(fields)
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


def received_return(event: Event[c.ReturnStatusChanged]) -> ReceivedReturn:
    ret = event.data
    return ReceivedReturn(
        tenant_id=event.tenantid,
        return_id=ret.id,
        lines=tuple(
            ReturnLine(line.sku, line.quantity, line.disposition, line.location_id)
            for line in ret.received_lines
        ),
    )


def sale_events(runtime: Runtime[None]) -> RecordingApply:
    async def apply(
        conn: asyncpg.Connection, batch: list[Event[Any]], unrecorded: Unrecorded
    ) -> None:
        sales: list[SaleChange] = []
        returns: list[tuple[UUID, ReceivedReturn]] = []
        for e in batch:  # one pass: a batch of sales pays one type check per event more
            if e.type == c.RETURN_STATUS_CHANGED:
                if e.data.status == "received":
                    returns.append((e.id, received_return(e)))
            elif changes_stock(e):
                sales.append(sale_change(e))
        # units back first: a sale of this batch waiting for them may take them at once
        await apply_returns_once(conn, returns, unrecorded)
        await reserve_sales(conn, sales)

    return apply


CONSUMERS = [
    Consumer(
        topics=[c.SALES_TOPIC],
        event_types=[
            c.SALE_CREATED,
            c.SALE_UPDATED,
            c.SALE_CANCELED,
            c.SALE_STATUS_CHANGED,
            c.RETURN_STATUS_CHANGED,  # received: its units come back (`usecases.returns`)
        ],
        apply=sale_events,
        relevant=changes_stock,
        records_inbox=True,  # only the returns' receipts (`apply_returns_once`)
    ),
]
