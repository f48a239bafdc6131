"""Returned units coming back into stock, from orders' `return.status_changed` to
`received` (through the inbox: each return applied exactly once, `apply_returns_once`).

In one transaction per batch: each `restock` line raises on-hand at its location (ledger
reason `return`, reference `return:<return id>`; a missing stock record is created, as a
restock does), and each `discard` line is a ledger row of reason `discard` with no quantity
change at the location where it was inspected. The backorder queue of every location that
gained stock is woken, as for any increase.

A line stock cannot apply (its location, or its SKU, is not in stock's catalogue) does not
stop the return, which orders has received already, nor is it a dead letter: the return is
valid. It is left out, named in the `notes` of the return's other ledger rows
(`not_restocked: <sku> x <quantity> at <location>`), and logged; a return none of whose
lines applies leaves only the log line.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from fulfilkit.inbox import Unrecorded
from stock import store
from stock.domain import LedgerEntry, RecordKey, StockRecord, apply_change
from stock.usecases._changes import save_changes

log = logging.getLogger(__name__)

RETURNS_ACTOR = "stock:returns"


@dataclass(frozen=True)
class ReturnLine:
    sku: str
    quantity: int
    disposition: str  # restock or discard
    location_id: str


@dataclass(frozen=True)
class ReceivedReturn:
    tenant_id: UUID
    return_id: UUID
    lines: tuple[ReturnLine, ...]

    @property
    def reference(self) -> str:
        return f"return:{self.return_id}"


async def _existing_or_created(
    conn: asyncpg.Connection, keys: Sequence[RecordKey]
) -> dict[RecordKey, StockRecord]:
    """The records of these (tenant, location, SKU) keys, locked, created empty where
    missing; a key whose location or product does not exist is left out."""
    usable = []
    for key in sorted(set(keys)):
        tenant, location_id, sku = key
        try:
            async with conn.transaction():  # a savepoint: the failure undoes only itself
                await store.records.insert_stock_record(
                    conn, StockRecord(uuid.uuid4(), tenant, location_id, sku, 0, 0, 1)
                )
        except asyncpg.ForeignKeyViolationError:
            continue
        usable.append(key)
    return await store.records.lock_records(conn, usable)


def _line_entry(record: StockRecord, line: ReturnLine, reference: str) -> LedgerEntry:
    if line.disposition == "restock":
        return apply_change(record, "return", line.quantity, 0, reference)
    return apply_change(record, "discard", 0, 0, reference)


async def apply_returns_once(
    conn: asyncpg.Connection,
    returns: Sequence[tuple[UUID, ReceivedReturn]],
    unrecorded: Unrecorded,
) -> None:
    """Apply the received returns (each with the id of its event) that the inbox has not
    recorded before, recording them, in the caller's transaction: raising on-hand is not
    idempotent, so a return's event applies once however often it comes. (The consumer's
    other events, the sales', need no inbox row: `reserve_sales` is idempotent per sale.)"""
    if not returns:
        return
    fresh = await unrecorded.record(conn, [i for i, _ in returns])
    await apply_returns(conn, [r for i, r in returns if i in fresh])


async def apply_returns(conn: asyncpg.Connection, returns: Sequence[ReceivedReturn]) -> None:
    """Apply received returns in the caller's transaction, each as often as it is given
    (`apply_returns_once` applies each once)."""
    if not returns:
        return
    keys = [(r.tenant_id, line.location_id, line.sku) for r in returns for line in r.lines]
    records = await _existing_or_created(conn, keys)
    for ret in returns:
        entries: list[LedgerEntry] = []
        left_out: list[ReturnLine] = []
        for line in ret.lines:
            record = records.get((ret.tenant_id, line.location_id, line.sku))
            if record is None:
                left_out.append(line)
                continue
            entries.append(_line_entry(record, line, ret.reference))
        notes = None
        if left_out:
            notes = "; ".join(
                f"not_restocked: {line.sku} x {line.quantity} at {line.location_id}"
                for line in left_out
            )
            log.warning(
                "return %s: lines left out, their location or product is not in stock's"
                " catalogue: %s",
                ret.return_id,
                notes,
            )
        touched = {e.record_id for e in entries}
        await save_changes(
            conn,
            [r for r in records.values() if r.id in touched],
            entries,
            RETURNS_ACTOR,
            notes=notes,
        )
