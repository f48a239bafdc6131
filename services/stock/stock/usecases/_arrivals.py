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
    its location would fill (lines none would fill are left out); one round trip for all."""
    short = [
        {
            s.sku: s.requested - s.available
            for s in failed.shortfalls
            if s.reason == "insufficient_stock" and failed.location_id is not None
        }
        for failed in failures
    ]
    keys = {
        (failed.sale.tenant_id, failed.location_id, sku)
        for failed, lines in zip(failures, short, strict=True)
        for sku in lines
    }
    orders = await store.inbound.expected_arrivals(conn, keys) if keys else {}
    out: list[Arrivals] = []
    for failed, lines in zip(failures, short, strict=True):
        found = {}
        for sku, wanted in lines.items():
            key = (failed.sale.tenant_id, failed.location_id or "", sku)
            if (at := first_arrival(wanted, orders.get(key, []))) is not None:
                found[sku] = at
        out.append(found)
    return out
