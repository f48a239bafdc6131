"""Inbound orders, their lines and receipts."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from stock.domain import RecordKey, StockRecord
from stock.inbound import InboundLine, InboundOrder, ReceiptLine
from stock.store._sql import RECORD_COLUMNS, RECORD_FROM, S, columns
from stock.store.reservations import Backorder

ORDER_FIELDS = (
    "o.id, o.tenant_id, o.reference, o.supplier, o.location_id, o.expected_at, o.urgent,"
    " o.instructions, o.properties, o.status, o.close_reason, o.version, o.created_at,"
    " o.updated_at"
)
LINES = (
    f"(SELECT coalesce(jsonb_agg(jsonb_build_array(l.sku, l.quantity, l.received)"
    f" ORDER BY l.position), '[]') FROM {S}.inbound_order_lines l"
    " WHERE l.inbound_order_id = o.id) AS lines"
)


def _order(row: asyncpg.Record) -> InboundOrder:
    fields = dict(row)
    lines = fields.pop("lines")
    return InboundOrder(**fields, lines=tuple(InboundLine(sku, q, r) for sku, q, r in lines))


async def insert_order(conn: asyncpg.Connection, order: InboundOrder) -> bool:
    """False when the tenant has an inbound order with this reference already; raises
    `asyncpg.ForeignKeyViolationError` when the location or a SKU does not exist."""
    status = await conn.execute(
        f"INSERT INTO {S}.inbound_orders (id, tenant_id, reference, supplier, location_id,"
        " expected_at, urgent, instructions, properties, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        order.id,
        order.tenant_id,
        order.reference,
        order.supplier,
        order.location_id,
        order.expected_at,
        order.urgent,
        order.instructions,
        order.properties,
        order.status,
    )
    if not status.endswith("1"):
        return False
    await _insert_lines(conn, order)
    return True


async def _insert_lines(conn: asyncpg.Connection, order: InboundOrder) -> None:
    await conn.execute(
        f"INSERT INTO {S}.inbound_order_lines (inbound_order_id, position, tenant_id, sku,"
        " quantity, received) SELECT $1, p, $2, s, q, r FROM unnest($3::int[], $4::text[],"
        " $5::int[], $6::int[]) AS v(p, s, q, r)",
        order.id,
        order.tenant_id,
        list(range(len(order.lines))),
        [line.sku for line in order.lines],
        [line.quantity for line in order.lines],
        [line.received for line in order.lines],
    )


async def get_order(
    conn: asyncpg.Connection, tenant_id: UUID, order_id: UUID, *, lock: bool = False
) -> InboundOrder | None:
    if lock:
        # locked first, then read in a statement of its own: a statement that waited for
        # the lock would read the lines as they were before the holder's change
        await conn.execute(
            f"SELECT 1 FROM {S}.inbound_orders WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            tenant_id,
            order_id,
        )
    row = await conn.fetchrow(
        f"SELECT {ORDER_FIELDS}, {LINES} FROM {S}.inbound_orders o"
        " WHERE o.tenant_id = $1 AND o.id = $2",
        tenant_id,
        order_id,
    )
    return _order(row) if row else None


async def list_orders(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    *,
    statuses: Sequence[str],
    locations: Sequence[str],
    skus: Sequence[str],
    expected_from: datetime | None,
    expected_to: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[InboundOrder], int]:
    where = (
        "o.tenant_id = $1 AND (cardinality($2::text[]) = 0 OR o.status = ANY($2))"
        " AND (cardinality($3::text[]) = 0 OR o.location_id = ANY($3))"
        " AND (cardinality($4::text[]) = 0 OR EXISTS (SELECT 1 FROM"
        f" {S}.inbound_order_lines l WHERE l.inbound_order_id = o.id AND l.sku = ANY($4)))"
        " AND ($5::timestamptz IS NULL OR o.expected_at >= $5)"
        " AND ($6::timestamptz IS NULL OR o.expected_at < $6)"
    )
    args = (tenant_id, list(statuses), list(locations), list(skus), expected_from, expected_to)
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.inbound_orders o WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT {ORDER_FIELDS}, {LINES} FROM {S}.inbound_orders o WHERE {where}"
        " ORDER BY o.created_at, o.id LIMIT $7 OFFSET $8",
        *args,
        limit,
        offset,
    )
    return [_order(r) for r in rows], total


async def save_order(
    conn: asyncpg.Connection, order: InboundOrder, *, lines_changed: bool
) -> InboundOrder:
    """Write the order's fields (and, when `lines_changed`, its lines) as a new version."""
    await conn.execute(
        f"UPDATE {S}.inbound_orders SET supplier = $3, location_id = $4, expected_at = $5,"
        " urgent = $6, instructions = $7, properties = $8, status = $9, close_reason = $10,"
        " version = version + 1, updated_at = now() WHERE tenant_id = $1 AND id = $2",
        order.tenant_id,
        order.id,
        order.supplier,
        order.location_id,
        order.expected_at,
        order.urgent,
        order.instructions,
        order.properties,
        order.status,
        order.close_reason,
    )
    if lines_changed:
        await conn.execute(
            f"DELETE FROM {S}.inbound_order_lines WHERE inbound_order_id = $1", order.id
        )
        await _insert_lines(conn, order)
    saved = await get_order(conn, order.tenant_id, order.id)
    assert saved is not None
    return saved


async def save_received(conn: asyncpg.Connection, order: InboundOrder) -> None:
    await conn.execute(
        f"UPDATE {S}.inbound_order_lines AS l SET received = v.r FROM unnest($2::text[],"
        " $3::int[]) AS v(s, r) WHERE l.inbound_order_id = $1 AND l.sku = v.s",
        order.id,
        [line.sku for line in order.lines],
        [line.received for line in order.lines],
    )


async def insert_receipt(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    receipt_id: UUID,
    order_id: UUID,
    lines: Sequence[ReceiptLine],
    actor: str,
) -> datetime:
    created: datetime = await conn.fetchval(
        f"INSERT INTO {S}.inbound_receipts (id, tenant_id, inbound_order_id, lines, actor)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING created_at",
        receipt_id,
        tenant_id,
        order_id,
        [vars(line) for line in lines],
        actor,
    )
    return created


async def incoming(
    conn: asyncpg.Connection, tenant_id: UUID, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Outstanding units of expected (open, receiving) orders by (location, SKU), for these
    pairs."""
    if not keys:
        return {}
    rows = await conn.fetch(
        f"SELECT o.location_id, l.sku, sum(greatest(l.quantity - l.received, 0)) AS n"
        f" FROM {S}.inbound_orders o JOIN {S}.inbound_order_lines l ON l.inbound_order_id = o.id"
        " WHERE o.tenant_id = $1 AND o.status IN ('open', 'receiving')"
        " AND (o.location_id, l.sku) IN (SELECT * FROM unnest($2::text[], $3::text[]))"
        " GROUP BY o.location_id, l.sku",
        tenant_id,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["location_id"], r["sku"]): r["n"] for r in rows}


async def expected_arrivals(
    conn: asyncpg.Connection, keys: Iterable[RecordKey]
) -> dict[RecordKey, list[tuple[datetime | None, int]]]:
    """(expected_at, outstanding units) of each expected order, by (tenant, location, SKU)."""
    keys = sorted(set(keys))
    rows = await conn.fetch(
        f"SELECT o.tenant_id, o.location_id, l.sku, o.expected_at,"
        " greatest(l.quantity - l.received, 0) AS n"
        f" FROM {S}.inbound_orders o JOIN {S}.inbound_order_lines l ON l.inbound_order_id = o.id"
        " WHERE o.status IN ('open', 'receiving') AND (o.tenant_id, o.location_id, l.sku) IN"
        " (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))",
        *columns(keys, 3),
    )
    found: dict[RecordKey, list[tuple[datetime | None, int]]] = {}
    for r in rows:
        key = (r["tenant_id"], r["location_id"], r["sku"])
        found.setdefault(key, []).append((r["expected_at"], r["n"]))
    return found


async def default_location(conn: asyncpg.Connection, tenant_id: UUID) -> str | None:
    location: str | None = await conn.fetchval(
        f"SELECT location_id FROM {S}.locations WHERE tenant_id = $1 AND is_default", tenant_id
    )
    return location


async def location_exists(conn: asyncpg.Connection, tenant_id: UUID, location_id: str) -> bool:
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {S}.locations WHERE tenant_id = $1"
            " AND location_id = $2)",
            tenant_id,
            location_id,
        )
    )


async def waiting_for(
    conn: asyncpg.Connection, tenant_id: UUID, location_id: str, skus: Sequence[str], limit: int
) -> list[Backorder]:
    """The sales waiting in a location's backorder queue with a line of one of `skus`,
    oldest first."""
    rows = await conn.fetch(
        f"SELECT seq, tenant_id, sale, sale_id, location_id, lines, routed, allow_split,"
        f" sale_version FROM {S}.backorders b WHERE tenant_id = $1 AND location_id = $2"
        " AND EXISTS (SELECT 1 FROM jsonb_array_elements(b.lines) l"
        " WHERE l->>'sku' = ANY($3::text[])) ORDER BY seq LIMIT $4",
        tenant_id,
        location_id,
        list(skus),
        limit,
    )
    return [Backorder(**dict(r)) for r in rows]


async def read_records(
    conn: asyncpg.Connection, keys: Iterable[RecordKey]
) -> dict[RecordKey, StockRecord]:
    """Records as they stand, unlocked (a look, not a change)."""
    keys = sorted(set(keys))
    rows = await conn.fetch(
        f"SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE (r.tenant_id, r.location_id, r.sku)"
        " IN (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))",
        *columns(keys, 3),
    )
    records = [StockRecord(**dict(r)) for r in rows]
    return {r.key: r for r in records}


async def list_receipts(
    conn: asyncpg.Connection, tenant_id: UUID, order_id: UUID, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of an order's receipts, oldest first, and how many it has."""
    total = await conn.fetchval(
        f"SELECT count(*) FROM {S}.inbound_receipts WHERE tenant_id = $1 AND inbound_order_id = $2",
        tenant_id,
        order_id,
    )
    rows = await conn.fetch(
        f"SELECT id, lines, actor, created_at FROM {S}.inbound_receipts WHERE tenant_id = $1"
        " AND inbound_order_id = $2 ORDER BY created_at, id LIMIT $3 OFFSET $4",
        tenant_id,
        order_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows], total
