"""Checks that stock figures agree with reservations and the ledger, and rebuilds `reserved`.

python -m stock.integrity [--tenant UUID] [--rebuild]     (reads DATABASE_URL)
"""

import argparse
import asyncio
import os
import sys
from uuid import UUID

import asyncpg

from fulfilkit.db import create_pool, in_transaction
from stock import store
from stock.changes import save_changes
from stock.domain import Discrepancy, apply_change, find_discrepancies

ACTOR = "stock:integrity"


async def check(conn: asyncpg.Connection, tenant: UUID | None) -> tuple[int, list[Discrepancy]]:
    records, active, ledger = await store.integrity_inputs(conn, tenant)
    return len(records), find_discrepancies(records, active, ledger)


async def rebuild(conn: asyncpg.Connection, tenant: UUID | None) -> int:
    """Set `reserved` to the sum of active reservations where they differ.

    The ledger gets an adjustment row for the difference it did not already record, so
    afterwards records, reservations and ledger agree again. Returns records repaired.
    """
    _, found = await check(conn, tenant)
    suspects = {d.record_id for d in found if d.check == "reserved_vs_reservations"}
    if not suspects:
        return 0
    # Reservations change only under their records' locks: recount once we hold them.
    records = await store.lock_records_by_id(conn, tenant, suspects)
    _, active, ledger = await store.integrity_inputs(conn, tenant)
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


async def _main(tenant: UUID | None, repair: bool) -> int:
    pool = await create_pool(os.environ.get("DATABASE_URL", ""), application_name="stock-integrity")
    try:
        if repair:
            repaired = await in_transaction(pool, lambda conn: rebuild(conn, tenant))
            print(f"repaired {repaired} stock records")
        async with pool.acquire() as conn:
            checked, found = await check(conn, tenant)
    finally:
        await pool.close()
    for d in found:
        print(
            f"{d.record_id} {d.location_id}/{d.sku}: {d.check} recorded {d.recorded},"
            f" expected {d.expected}"
        )
    print(f"checked {checked} stock records: {len(found)} discrepancies")
    return 1 if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Check stock figures against reservations and the ledger."
    )
    parser.add_argument("--tenant", type=UUID)
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="set reserved to the sum of active reservations first",
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(_main(args.tenant, args.rebuild)))


if __name__ == "__main__":
    main()
