"""When a short line's units are expected: the first expected inbound order at the sale's
location whose incoming units would fill the line (`stock.inbound.first_arrival`)."""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from stock import store
from stock.domain import ReservationFailed
from stock.inbound import first_arrival

Arrivals = dict[str, datetime]


async def arrivals(
    conn: asyncpg.Connection, failures: Sequence[ReservationFailed]
) -> list[Arrivals]:
    """For each failure, the expected arrival of each short line that an inbound order at
    its location would fill (lines none would fill are left out)."""
    out: list[Arrivals] = []
    for failed in failures:
        short = {
            s.sku: s.requested - s.available
            for s in failed.shortfalls
            if s.reason == "insufficient_stock"
        }
        if not short or failed.location_id is None:
            out.append({})
            continue
        orders = await store.inbound.expected_arrivals(
            conn, failed.sale.tenant_id, failed.location_id, sorted(short)
        )
        found = {
            sku: at
            for sku, wanted in short.items()
            if (at := first_arrival(wanted, orders.get(sku, []))) is not None
        }
        out.append(found)
    return out
