"""Writes stock changes: records, ledger rows, events, low alerts and backorder wake-ups."""

from collections.abc import Sequence

import asyncpg

from stock import events, store
from stock.domain import LedgerEntry, StockRecord, newly_low
from stock.events import Outgoing

# From this many events on, they are written by COPY (one more round trip, less CPU a row)
COPY_FROM = 20


async def save_changes(
    conn: asyncpg.Connection,
    records: Sequence[StockRecord],
    entries: Sequence[LedgerEntry],
    actor: str,
    *,
    notes: str | None = None,
    more_events: Sequence[Outgoing] = (),
) -> None:
    """Persist what the domain decided, in the caller's transaction.

    `records` are the records the entries changed (already locked by the caller).
    """
    touched_ids = {e.record_id for e in entries}
    touched = [r for r in records if r.id in touched_ids]
    alerts = newly_low(touched)
    await store.records.save_records(conn, touched)
    await store.records.insert_movements(conn, entries, actor, notes)
    outgoing = [events.stock_changed(e) for e in entries]
    outgoing += [events.stock_low(r) for r in alerts]
    written = [*outgoing, *more_events]
    if len(written) >= COPY_FROM:
        await store.outbox.copy_events(conn, written)
    else:
        await store.outbox.add_events(conn, written)
    freed = {
        (e.tenant_id, e.location_id) for e in entries if e.quantity_change - e.reserved_change > 0
    }
    await store.reservations.request_backorder_retry(conn, freed)
