"""The integrity check from a shell (the same use cases as `GET /stock/integrity`):

python -m stock.integrity [--tenant UUID] [--rebuild]     (reads DATABASE_URL)

Exits 1 while any discrepancy remains.
"""

import argparse
import asyncio
import os
import sys
from uuid import UUID

from fulfilkit.db import create_pool
from stock.usecases.integrity import check_integrity, rebuild_reserved


async def _main(tenant: UUID | None, repair: bool) -> int:
    pool = await create_pool(os.environ.get("DATABASE_URL", ""), application_name="stock-integrity")
    try:
        if repair:
            result = await rebuild_reserved(pool, tenant)
            print(f"repaired {result.repaired} stock records")
        else:
            result = await check_integrity(pool, tenant)
    finally:
        await pool.close()
    for d in result.discrepancies:
        print(
            f"{d.record_id} {d.location_id}/{d.sku}: {d.check} recorded {d.recorded},"
            f" expected {d.expected}"
        )
    print(
        f"checked {result.records_checked} stock records: {len(result.discrepancies)} discrepancies"
    )
    return 1 if result.discrepancies else 0


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
