"""Reserve, release and commit stock for sales, and retry backorders: the stock use cases
that events trigger. Each function runs in the caller's transaction and locks records first.
"""

import uuid
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent
from fulfilkit.outbox import Keyed
from stock import events, store
from stock.changes import save_changes
from stock.domain import (
    LedgerEntry,
    RecordKey,
    Reserved,
    SaleToReserve,
    StockRecord,
    commit,
    release,
    reserve_sale,
)
from stock.store import ReservationRow

ACTOR = "stock:reservations"


@dataclass(frozen=True)
class SaleEvent:
    kind: Literal["created", "canceled", "shipped"]
    sale: SaleToReserve

    @property
    def key(self) -> tuple[UUID, UUID]:
        return (self.sale.tenant_id, self.sale.sale)


def sale_event(event: CloudEvent) -> SaleEvent | None:
    """The stock-relevant meaning of a sale event, or None when it means nothing here."""
    snapshot = c.SaleSnapshot.model_validate(event.data)
    sale = SaleToReserve(
        sale=snapshot.id,
        sale_id=snapshot.sale_id,
        tenant_id=event.tenantid,
        location_id=snapshot.location_id,
        lines=tuple((ln.sku, ln.quantity) for ln in snapshot.lines),
    )
    if event.type == c.SALE_CREATED:
        return SaleEvent("created", sale)
    if event.type == c.SALE_CANCELED:
        return SaleEvent("canceled", sale)
    if event.type == c.SALE_STATUS_CHANGED and snapshot.status == "shipped":
        return SaleEvent("shipped", sale)
    return None


def _new_reservation(outcome: Reserved, status: str = "active") -> ReservationRow:
    sale = outcome.sale
    return ReservationRow(
        uuid.uuid4(),
        sale.tenant_id,
        sale.sale,
        sale.sale_id,
        sale.location_id,
        status,
        1,
        list(outcome.lines),
    )


class _Batch:
    """What one transaction decides, collected so it is written set-wise at the end."""

    def __init__(self, records: dict[RecordKey, StockRecord]) -> None:
        self.bulky = {r.id for r in records.values() if r.is_bulky}
        self.entries: list[LedgerEntry] = []
        self.new: dict[UUID, ReservationRow] = {}
        self.changed: dict[UUID, ReservationRow] = {}
        self.backorders: list[tuple[UUID, UUID, str, str, list[dict]]] = []
        self.unqueued: set[tuple[UUID, UUID]] = set()
        self.outgoing: list[Keyed] = []

    def add(self, row: ReservationRow) -> ReservationRow:
        self.new[row.id] = row
        return row

    def settle(self, row: ReservationRow, status: str, entries: list[LedgerEntry]) -> None:
        row.status, row.version = status, row.version + 1
        self.entries += entries
        if row.id not in self.new:
            self.changed[row.id] = row
        self.outgoing.append(events.reservation(row, self.bulky))

    async def write(self, conn: asyncpg.Connection, records: list[StockRecord]) -> None:
        await store.insert_reservations(conn, list(self.new.values()))
        await store.update_reservations(conn, list(self.changed.values()))
        await store.insert_backorders(conn, self.backorders)
        await store.delete_backorders(conn, self.unqueued)
        await save_changes(conn, records, self.entries, ACTOR, more_events=self.outgoing)


async def apply_sale_events(conn: asyncpg.Connection, batch: list[SaleEvent]) -> None:
    """Reserve new sales (all lines or none, else backorder), release canceled, commit shipped.

    Idempotent per sale: a reservation, once active, released or committed, never repeats.
    """
    if not batch:
        return
    keys = {e.key for e in batch}
    # Records to lock for releases and commits; a sale being created reserves fresh ones.
    known = await store.reservations_for(conn, {e.key for e in batch if e.kind != "created"})
    wanted = {k for e in batch if e.kind == "created" for k in e.sale.keys()}
    wanted |= {(r.tenant_id, r.location_id, ln[0]) for r in known.values() for ln in r.lines}
    records = await store.lock_records(conn, wanted)
    by_id = {r.id: r for r in records.values()}
    reservations = await store.reservations_for(conn, keys, lock=True)
    created = [e.sale for e in batch if e.kind == "created"]
    locations, skus, queued = await store.known_for_batch(
        conn,
        {(s.tenant_id, s.location_id) for s in created},
        {(t, sku) for t, _, sku in wanted},
        keys,
    )

    out = _Batch(records)
    for e in batch:
        row = reservations.get(e.key)
        lines = [(rid, qty) for _, qty, rid in row.lines] if row else []
        if e.kind == "created" and row is None and e.key not in queued:
            outcome = reserve_sale(e.sale, records, locations, skus)
            if isinstance(outcome, Reserved):
                row = reservations[e.key] = out.add(_new_reservation(outcome))
                out.entries += outcome.entries
                out.outgoing.append(events.reservation(row, out.bulky))
            else:
                queued.add(e.key)
                out.backorders.append(
                    (
                        *e.key,
                        e.sale.sale_id,
                        e.sale.location_id,
                        [{"sku": s, "quantity": q} for s, q in e.sale.lines],
                    )
                )
                out.outgoing.append(events.reservation_failed(outcome))
        elif e.kind == "canceled":
            if row is None:  # a tombstone, so a late or replayed sale.created reserves nothing
                tomb = _new_reservation(Reserved(e.sale, []), "released")
                reservations[e.key] = out.add(tomb)
            elif row.status == "active":
                out.settle(row, "released", release(by_id, lines, e.sale.sale_id))
            if e.key in queued:
                queued.discard(e.key)
                out.unqueued.add(e.key)
        elif e.kind == "shipped" and row is not None and row.status == "active":
            out.settle(row, "committed", commit(by_id, lines, e.sale.sale_id))
    await out.write(conn, list(records.values()))


async def retry_backorders(
    conn: asyncpg.Connection, tenant_id: UUID, location_id: str, limit: int = 1000
) -> bool:
    """Retry one location's queue, oldest first; each sale that now fits is reserved.

    Returns True when the queue had more than `limit` sales, so another round is due.
    """
    waiting = await store.waiting_backorders(conn, tenant_id, location_id, limit)
    if not waiting:
        return False
    sales = [
        SaleToReserve(
            b.sale,
            b.sale_id,
            tenant_id,
            location_id,
            tuple((ln["sku"], ln["quantity"]) for ln in b.lines),
        )
        for b in waiting
    ]
    records = await store.lock_records(conn, {k for s in sales for k in s.keys()})
    still_waiting = await store.lock_backorders(conn, [b.seq for b in waiting])
    skus = await store.known_skus(conn, {(tenant_id, sku) for s in sales for sku, _ in s.lines})
    locations = {(tenant_id, location_id)}
    out = _Batch(records)
    for backorder, sale in zip(waiting, sales, strict=True):
        if not any(r.available > 0 for r in records.values()):
            break
        if backorder.seq not in still_waiting:
            continue
        outcome = reserve_sale(sale, records, locations, skus)
        if isinstance(outcome, Reserved):
            row = out.add(_new_reservation(outcome))
            out.entries += outcome.entries
            out.outgoing.append(events.reservation(row, out.bulky))
            out.unqueued.add((tenant_id, sale.sale))
    await out.write(conn, list(records.values()))
    return len(waiting) == limit
