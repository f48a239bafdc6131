"""SQL for the stock schema."""

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from stock.domain import LedgerEntry, Reserved, StockRecord

S = "stock"
RecordKey = tuple[UUID, str, str]


async def insert_product(conn: asyncpg.Connection, tenant_id: UUID, p: dict[str, Any]) -> dict:
    row = await conn.fetchrow(
        f"INSERT INTO {S}.products (tenant_id, sku, name, ean, unit_type, min_level, is_bulky)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING *",
        tenant_id, p["sku"], p["name"], p.get("ean"), p["unit_type"], p["min_level"],
        p["is_bulky"],
    )
    return dict(row) if row else {}


async def get_product(conn: asyncpg.Connection, tenant_id: UUID, sku: str) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT * FROM {S}.products WHERE tenant_id = $1 AND sku = $2", tenant_id, sku
    )
    return dict(row) if row else None


async def update_product(
    conn: asyncpg.Connection, tenant_id: UUID, sku: str, changes: dict[str, Any],
    expected_version: int | None,
) -> dict | None:
    columns = [c for c in ("name", "ean", "unit_type", "min_level", "is_bulky") if c in changes]
    assignments = ", ".join(f"{c} = ${i + 4}" for i, c in enumerate(columns))
    sets = f"{assignments}, " if assignments else ""
    row = await conn.fetchrow(
        f"UPDATE {S}.products SET {sets}version = version + 1, updated_at = now()"
        " WHERE tenant_id = $1 AND sku = $2 AND ($3::int IS NULL OR version = $3) RETURNING *",
        tenant_id, sku, expected_version, *(changes[c] for c in columns),
    )
    return dict(row) if row else None


async def list_rows(
    conn: asyncpg.Connection, table: str, tenant_id: UUID, order: str, limit: int, offset: int,
    filters: dict[str, Sequence[Any]] | None = None,
) -> tuple[list[dict], int]:
    """Page through one of this schema's tenant tables, with optional `column = ANY(values)`."""
    where, args = ["tenant_id = $1"], [tenant_id]
    for column, values in (filters or {}).items():
        if values:
            args.append(list(values))
            where.append(f"{column} = ANY(${len(args)})")
    clause = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.{table} WHERE {clause}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM {S}.{table} WHERE {clause} ORDER BY {order}"
        f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args, limit, offset,
    )
    return [dict(r) for r in rows], total


async def insert_location(conn: asyncpg.Connection, tenant_id: UUID, loc: dict[str, Any]) -> dict:
    row = await conn.fetchrow(
        f"INSERT INTO {S}.locations (tenant_id, location_id, name, address)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING *",
        tenant_id, loc["location_id"], loc["name"], loc.get("address"),
    )
    return dict(row) if row else {}


async def insert_stock_record(
    conn: asyncpg.Connection, record: StockRecord
) -> bool:
    status = await conn.execute(
        f"INSERT INTO {S}.stock_records (id, tenant_id, location_id, sku, quantity, reserved)"
        " VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT DO NOTHING",
        record.id, record.tenant_id, record.location_id, record.sku, record.quantity,
    )
    return status.endswith("1")


async def known_locations(conn: asyncpg.Connection, keys: Iterable[tuple[UUID, str]]) -> set:
    keys = list(keys)
    rows = await conn.fetch(
        f"SELECT tenant_id, location_id FROM {S}.locations"
        " WHERE (tenant_id, location_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(r["tenant_id"], r["location_id"]) for r in rows}


async def known_skus(conn: asyncpg.Connection, keys: Iterable[tuple[UUID, str]]) -> set:
    keys = list(keys)
    rows = await conn.fetch(
        f"SELECT tenant_id, sku FROM {S}.products"
        " WHERE (tenant_id, sku) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(r["tenant_id"], r["sku"]) for r in rows}


async def lock_records(
    conn: asyncpg.Connection, keys: Iterable[RecordKey]
) -> dict[RecordKey, StockRecord]:
    """Lock the records in one fixed order (tenant, location, SKU), so batches never deadlock."""
    keys = sorted(set(keys))
    rows = await conn.fetch(
        f"SELECT id, tenant_id, location_id, sku, quantity, reserved, version"
        f" FROM {S}.stock_records WHERE (tenant_id, location_id, sku) IN"
        " (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))"
        " ORDER BY tenant_id, location_id, sku FOR UPDATE",
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
    )
    records = [StockRecord(**dict(r)) for r in rows]
    return {r.key: r for r in records}


async def save_records(conn: asyncpg.Connection, records: Iterable[StockRecord]) -> None:
    records = list(records)
    if not records:
        return
    await conn.execute(
        f"UPDATE {S}.stock_records AS r SET quantity = v.quantity, reserved = v.reserved,"
        " version = v.version, updated_at = now()"
        " FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[]) AS v(id, quantity, reserved,"
        " version) WHERE r.id = v.id",
        [r.id for r in records], [r.quantity for r in records],
        [r.reserved for r in records], [r.version for r in records],
    )


async def insert_movements(
    conn: asyncpg.Connection, entries: Sequence[LedgerEntry], actor: str,
    notes: str | None = None,
) -> None:
    if not entries:
        return
    await conn.execute(
        f"INSERT INTO {S}.movements (tenant_id, stock_record_id, location_id, sku, reason,"
        " quantity_change, reserved_change, quantity_after, reserved_after, actor, reference,"
        " notes) SELECT t, r, l, s, re, qc, rc, qa, ra, $10, ref, $11 FROM unnest($1::uuid[],"
        " $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[],"
        " $9::int[], $12::text[]) AS v(t, r, l, s, re, qc, rc, qa, ra, ref)",
        [e.tenant_id for e in entries], [e.record_id for e in entries],
        [e.location_id for e in entries], [e.sku for e in entries],
        [e.reason for e in entries], [e.quantity_change for e in entries],
        [e.reserved_change for e in entries], [e.quantity_after for e in entries],
        [e.reserved_after for e in entries], actor, notes, [e.reference for e in entries],
    )


async def reserved_sales(conn: asyncpg.Connection, keys: Iterable[tuple[UUID, UUID]]) -> set:
    keys = list(keys)
    rows = await conn.fetch(
        f"SELECT tenant_id, sale FROM {S}.reservations"
        " WHERE (tenant_id, sale) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(r["tenant_id"], r["sale"]) for r in rows}


async def insert_reservations(
    conn: asyncpg.Connection, reservations: Sequence[tuple[UUID, Reserved]]
) -> None:
    if not reservations:
        return
    await conn.execute(
        f"INSERT INTO {S}.reservations (id, tenant_id, sale, sale_id, location_id, status)"
        " SELECT i, t, s, si, l, 'active' FROM unnest($1::uuid[], $2::uuid[], $3::uuid[],"
        " $4::text[], $5::text[]) AS v(i, t, s, si, l)",
        [rid for rid, _ in reservations], [r.sale.tenant_id for _, r in reservations],
        [r.sale.sale for _, r in reservations], [r.sale.sale_id for _, r in reservations],
        [r.sale.location_id for _, r in reservations],
    )
    lines = [(rid, line) for rid, r in reservations for line in r.lines]
    await conn.execute(
        f"INSERT INTO {S}.reservation_lines (reservation_id, stock_record_id, sku, quantity)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[])",
        [rid for rid, _ in lines], [ln[2] for _, ln in lines], [ln[0] for _, ln in lines],
        [ln[1] for _, ln in lines],
    )
