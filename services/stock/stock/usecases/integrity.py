"""Check that stock figures agree with reservations and the ledger; rebuild `reserved`."""

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from fulfilkit.db import in_transaction
from stock import store
from stock.domain import Discrepancy, apply_change, find_discrepancies
from stock.usecases._changes import save_changes

ACTOR = "stock:integrity"


@dataclass(frozen=True)
class IntegrityCheck:
    records_checked: int
    discrepancies: list[Discrepancy]
    repaired: int = 0  # records whose `reserved` a rebuild set right first

    @property
    def ok(self) -> bool:
        return not self.discrepancies


async def check_integrity(pool: asyncpg.Pool, tenant: UUID | None) -> IntegrityCheck:
    """Does every record's `reserved` equal its active reservations, and its ledger sums?
    (Every tenant's records when `tenant` is None.)"""
    async with pool.acquire() as conn:
        return await _check(conn, tenant)


async def rebuild_reserved(pool: asyncpg.Pool, tenant: UUID | None) -> IntegrityCheck:
    """Set `reserved` to the sum of active reservations where they differ, then check again.

    The ledger gets an adjustment row for the difference it did not already record, so
    afterwards records, reservations and ledger agree again.
    """
    repaired = await in_transaction(pool, lambda conn: _rebuild(conn, tenant))
    found = await check_integrity(pool, tenant)
    return IntegrityCheck(found.records_checked, found.discrepancies, repaired)


async def _check(conn: asyncpg.Connection, tenant: UUID | None) -> IntegrityCheck:
    records, active, ledger = await store.records.integrity_inputs(conn, tenant)
    return IntegrityCheck(len(records), find_discrepancies(records, active, ledger))


async def _rebuild(conn: asyncpg.Connection, tenant: UUID | None) -> int:
    found = (await _check(conn, tenant)).discrepancies
    suspects = {d.record_id for d in found if d.check == "reserved_vs_reservations"}
    if not suspects:
        return 0
    # Reservations change only under their records' locks: recount once we hold them.
    records = await store.records.lock_records_by_id(conn, tenant, suspects)
    _, active, ledger = await store.records.integrity_inputs(conn, tenant)
    entries = []
    for record in records.values():
        expected = active.get(record.id, 0)
        if record.reserved == expected:
            continue
        ledger_reserved = ledger.get(record.id, (0, 0))[1]
        record.reserved = ledger_reserved
        entries.append(
            apply_change(record, "adjustment", 0, expected - ledger_reserved, "integrity-rebuild")
        )
    await save_changes(conn, list(records.values()), entries, ACTOR)
    return len(entries)
