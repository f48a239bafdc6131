"""SQL for the stock schema."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from stock.domain import LedgerEntry, RecordKey, StockRecord

S = "stock"
BACKORDER_CHANNEL = "stock_backorders"
RECORD_COLUMNS = (
    "r.id, r.tenant_id, r.location_id, r.sku, r.quantity, r.reserved, r.version,"
    " p.min_level, r.low, p.is_bulky"
)
RECORD_FROM = f"{S}.stock_records r JOIN {S}.products p USING (tenant_id, sku)"


def _columns(keys: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[k[i] for k in keys] for i in range(width)]


# Catalogue


async def insert_product(conn: asyncpg.Connection, tenant_id: UUID, p: dict[str, Any]) -> dict:
    row = await conn.fetchrow(
        f"INSERT INTO {S}.products (tenant_id, sku, name, ean, unit_type, min_level, is_bulky)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING *",
        tenant_id,
        p["sku"],
        p["name"],
        p.get("ean"),
        p["unit_type"],
        p["min_level"],
        p["is_bulky"],
    )
    return dict(row) if row else {}


async def get_product(conn: asyncpg.Connection, tenant_id: UUID, sku: str) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT * FROM {S}.products WHERE tenant_id = $1 AND sku = $2", tenant_id, sku
    )
    return dict(row) if row else None


async def update_row(
    conn: asyncpg.Connection,
    table: str,
    key_column: str,
    tenant_id: UUID,
    key: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> dict | None:
    """Partial update of a catalogue row; None when missing or not at `expected_version`.

    An empty change set changes nothing (the version stays) but still checks the version.
    """
    if not changes:
        row = await conn.fetchrow(
            f"SELECT * FROM {S}.{table} WHERE tenant_id = $1 AND {key_column} = $2"
            " AND ($3::int IS NULL OR version = $3)",
            tenant_id,
            key,
            expected_version,
        )
        return dict(row) if row else None
    columns = list(changes)
    assignments = "".join(f"{c} = ${i + 4}, " for i, c in enumerate(columns))
    row = await conn.fetchrow(
        f"UPDATE {S}.{table} SET {assignments}version = version + 1, updated_at = now()"
        f" WHERE tenant_id = $1 AND {key_column} = $2 AND ($3::int IS NULL OR version = $3)"
        " RETURNING *",
        tenant_id,
        key,
        expected_version,
        *(changes[c] for c in columns),
    )
    return dict(row) if row else None


async def list_rows(
    conn: asyncpg.Connection,
    table: str,
    tenant_id: UUID,
    order: str,
    limit: int,
    offset: int,
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
        *args,
        limit,
        offset,
    )
    return [dict(r) for r in rows], total


async def insert_location(conn: asyncpg.Connection, tenant_id: UUID, loc: dict[str, Any]) -> dict:
    row = await conn.fetchrow(
        f"INSERT INTO {S}.locations (tenant_id, location_id, name, address)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING *",
        tenant_id,
        loc["location_id"],
        loc["name"],
        loc.get("address"),
    )
    return dict(row) if row else {}


async def get_location(conn: asyncpg.Connection, tenant_id: UUID, location_id: str) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT * FROM {S}.locations WHERE tenant_id = $1 AND location_id = $2",
        tenant_id,
        location_id,
    )
    return dict(row) if row else None


async def existing_pairs(
    conn: asyncpg.Connection,
    table: str,
    columns: tuple[str, str],
    types: tuple[str, str],
    keys: Iterable[tuple[Any, Any]],
) -> set[tuple[Any, Any]]:
    """Which (tenant, x) pairs exist in `table`, in one round trip."""
    keys = list(keys)
    a, b = columns
    rows = await conn.fetch(
        f"SELECT {a}, {b} FROM {S}.{table} WHERE ({a}, {b}) IN"
        f" (SELECT * FROM unnest($1::{types[0]}[], $2::{types[1]}[]))",
        *_columns(keys, 2),
    )
    return {(r[a], r[b]) for r in rows}


async def known_skus(conn: asyncpg.Connection, keys: Iterable[tuple[UUID, str]]) -> set:
    return await existing_pairs(conn, "products", ("tenant_id", "sku"), ("uuid", "text"), keys)


async def known_for_batch(
    conn: asyncpg.Connection,
    locations: Iterable[tuple[UUID, str]],
    skus: Iterable[tuple[UUID, str]],
    sales: Iterable[tuple[UUID, UUID]],
) -> tuple[set[tuple[UUID, str]], set[tuple[UUID, str]], set[tuple[UUID, UUID]]]:
    """Which of these locations and SKUs exist and which of these sales wait in the backorder
    queue: three lookups in one round trip."""
    locations, skus, sales = list(locations), list(skus), list(sales)
    rows = await conn.fetch(
        f"SELECT 1 AS kind, tenant_id, location_id AS name, NULL::uuid AS sale FROM {S}.locations"
        " WHERE (tenant_id, location_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
        f" UNION ALL SELECT 2, tenant_id, sku, NULL FROM {S}.products"
        " WHERE (tenant_id, sku) IN (SELECT * FROM unnest($3::uuid[], $4::text[]))"
        f" UNION ALL SELECT 3, tenant_id, NULL, sale FROM {S}.backorders"
        " WHERE (tenant_id, sale) IN (SELECT * FROM unnest($5::uuid[], $6::uuid[]))",
        *_columns(locations, 2),
        *_columns(skus, 2),
        *_columns(sales, 2),
    )
    found: tuple[set, set, set] = (set(), set(), set())
    for r in rows:
        found[r["kind"] - 1].add((r["tenant_id"], r["sale"] if r["kind"] == 3 else r["name"]))
    return found


# Stock records and the ledger


async def insert_stock_record(conn: asyncpg.Connection, record: StockRecord) -> bool:
    status = await conn.execute(
        f"INSERT INTO {S}.stock_records (id, tenant_id, location_id, sku, quantity, reserved)"
        " VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT DO NOTHING",
        record.id,
        record.tenant_id,
        record.location_id,
        record.sku,
        record.quantity,
    )
    return status.endswith("1")


async def lock_records(
    conn: asyncpg.Connection, keys: Iterable[RecordKey]
) -> dict[RecordKey, StockRecord]:
    """Lock records in the one global order (tenant, location, SKU), so nothing deadlocks."""
    keys = sorted(set(keys))
    rows = await conn.fetch(
        f"SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE (r.tenant_id, r.location_id, r.sku)"
        " IN (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))"
        " ORDER BY r.tenant_id, r.location_id, r.sku FOR UPDATE OF r",
        *_columns(keys, 3),
    )
    records = [StockRecord(**dict(r)) for r in rows]
    return {r.key: r for r in records}


async def lock_records_by_id(
    conn: asyncpg.Connection, tenant_id: UUID | None, ids: Iterable[UUID]
) -> dict[UUID, StockRecord]:
    rows = await conn.fetch(
        f"SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE ($1::uuid IS NULL OR r.tenant_id = $1)"
        " AND r.id = ANY($2::uuid[]) ORDER BY r.tenant_id, r.location_id, r.sku FOR UPDATE OF r",
        tenant_id,
        list(set(ids)),
    )
    return {r["id"]: StockRecord(**dict(r)) for r in rows}


async def record_exists(
    conn: asyncpg.Connection, tenant_id: UUID, location_id: str, sku: str
) -> bool:
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {S}.stock_records WHERE tenant_id = $1"
            " AND location_id = $2 AND sku = $3)",
            tenant_id,
            location_id,
            sku,
        )
    )


async def get_record(conn: asyncpg.Connection, tenant_id: UUID, record_id: UUID) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT * FROM {S}.stock_records WHERE tenant_id = $1 AND id = $2", tenant_id, record_id
    )
    return dict(row) if row else None


async def get_records(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, dict]:
    rows = await conn.fetch(
        f"SELECT * FROM {S}.stock_records WHERE id = ANY($1::uuid[])", list(ids)
    )
    return {r["id"]: dict(r) for r in rows}


async def save_records(conn: asyncpg.Connection, records: Iterable[StockRecord]) -> None:
    records = list(records)
    if not records:
        return
    await conn.execute(
        f"UPDATE {S}.stock_records AS r SET quantity = v.quantity, reserved = v.reserved,"
        " version = v.version, low = v.low, updated_at = now()"
        " FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::bool[])"
        " AS v(id, quantity, reserved, version, low) WHERE r.id = v.id",
        [r.id for r in records],
        [r.quantity for r in records],
        [r.reserved for r in records],
        [r.version for r in records],
        [r.low for r in records],
    )


async def insert_movements(
    conn: asyncpg.Connection,
    entries: Sequence[LedgerEntry],
    actor: str,
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
        [e.tenant_id for e in entries],
        [e.record_id for e in entries],
        [e.location_id for e in entries],
        [e.sku for e in entries],
        [e.reason for e in entries],
        [e.quantity_change for e in entries],
        [e.reserved_change for e in entries],
        [e.quantity_after for e in entries],
        [e.reserved_after for e in entries],
        actor,
        notes,
        [e.reference for e in entries],
    )


async def list_movements(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    *,
    skus: Sequence[str],
    locations: Sequence[str],
    reasons: Sequence[str],
    reference: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[dict], int]:
    where = (
        "tenant_id = $1 AND (cardinality($2::text[]) = 0 OR sku = ANY($2))"
        " AND (cardinality($3::text[]) = 0 OR location_id = ANY($3))"
        " AND (cardinality($4::text[]) = 0 OR reason = ANY($4))"
        " AND ($5::text IS NULL OR reference = $5)"
        " AND ($6::timestamptz IS NULL OR created_at >= $6)"
        " AND ($7::timestamptz IS NULL OR created_at < $7)"
    )
    args = (
        tenant_id,
        list(skus),
        list(locations),
        list(reasons),
        reference,
        created_from,
        created_to,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.movements WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM {S}.movements WHERE {where} ORDER BY id LIMIT $8 OFFSET $9",
        *args,
        limit,
        offset,
    )
    return [dict(r) for r in rows], total


# Reservations and backorders


@dataclass
class ReservationRow:
    id: UUID
    tenant_id: UUID
    sale: UUID
    sale_id: str
    location_id: str
    status: str
    version: int
    lines: list[tuple[str, int, UUID]]


async def reservations_for(
    conn: asyncpg.Connection, sales: Iterable[tuple[UUID, UUID]], lock: bool = False
) -> dict[tuple[UUID, UUID], ReservationRow]:
    """The sales' reservations with their lines, in one round trip (none for no sales)."""
    keys = sorted(set(sales))
    if not keys:
        return {}
    rows = await conn.fetch(
        f"SELECT r.id, r.tenant_id, r.sale, r.sale_id, r.location_id, r.status, r.version,"
        " (SELECT coalesce(json_agg(json_build_array(l.sku, l.quantity, l.stock_record_id)"
        f" ORDER BY l.sku), '[]') FROM {S}.reservation_lines l WHERE l.reservation_id = r.id)"
        f" AS lines FROM {S}.reservations r"
        " WHERE (r.tenant_id, r.sale) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))"
        " ORDER BY r.id" + (" FOR UPDATE OF r" if lock else ""),
        *_columns(keys, 2),
    )
    found = {}
    for r in rows:
        fields = dict(r)
        fields["lines"] = [(sku, qty, UUID(rid)) for sku, qty, rid in fields["lines"]]
        found[(r["tenant_id"], r["sale"])] = ReservationRow(**fields)
    return found


async def insert_reservations(conn: asyncpg.Connection, rows: Sequence[ReservationRow]) -> None:
    if not rows:
        return
    await conn.execute(
        f"INSERT INTO {S}.reservations (id, tenant_id, sale, sale_id, location_id, status,"
        " version) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[],"
        " $5::text[], $6::text[], $7::int[])",
        [r.id for r in rows],
        [r.tenant_id for r in rows],
        [r.sale for r in rows],
        [r.sale_id for r in rows],
        [r.location_id for r in rows],
        [r.status for r in rows],
        [r.version for r in rows],
    )
    lines = [(r.id, line) for r in rows for line in r.lines]
    if lines:
        await conn.execute(
            f"INSERT INTO {S}.reservation_lines (reservation_id, stock_record_id, sku, quantity)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[])",
            [rid for rid, _ in lines],
            [ln[2] for _, ln in lines],
            [ln[0] for _, ln in lines],
            [ln[1] for _, ln in lines],
        )


async def update_reservations(conn: asyncpg.Connection, rows: Sequence[ReservationRow]) -> None:
    if not rows:
        return
    await conn.execute(
        f"UPDATE {S}.reservations AS r SET status = v.status, version = v.version,"
        " updated_at = now() FROM unnest($1::uuid[], $2::text[], $3::int[])"
        " AS v(id, status, version) WHERE r.id = v.id",
        [r.id for r in rows],
        [r.status for r in rows],
        [r.version for r in rows],
    )


@dataclass
class BackorderRow:
    seq: int
    tenant_id: UUID
    sale: UUID
    sale_id: str
    location_id: str
    lines: list[dict[str, Any]]


async def insert_backorders(
    conn: asyncpg.Connection, rows: Sequence[tuple[UUID, UUID, str, str, list[dict]]]
) -> None:
    if rows:
        await conn.execute(
            f"INSERT INTO {S}.backorders (tenant_id, sale, sale_id, location_id, lines)"
            " SELECT t, s, si, l, ln::jsonb FROM unnest($1::uuid[], $2::uuid[], $3::text[],"
            " $4::text[], $5::text[]) AS v(t, s, si, l, ln) ON CONFLICT DO NOTHING",
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [orjson.dumps(r[4]).decode() for r in rows],
        )


async def delete_backorders(conn: asyncpg.Connection, sales: Iterable[tuple[UUID, UUID]]) -> None:
    keys = list(sales)
    if keys:
        await conn.execute(
            f"DELETE FROM {S}.backorders WHERE (tenant_id, sale) IN"
            " (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
            *_columns(keys, 2),
        )


async def waiting_backorders(
    conn: asyncpg.Connection, tenant_id: UUID, location_id: str, limit: int
) -> list[BackorderRow]:
    rows = await conn.fetch(
        f"SELECT seq, tenant_id, sale, sale_id, location_id, lines FROM {S}.backorders"
        " WHERE tenant_id = $1 AND location_id = $2 ORDER BY seq LIMIT $3",
        tenant_id,
        location_id,
        limit,
    )
    return [BackorderRow(**dict(r)) for r in rows]


async def lock_backorders(conn: asyncpg.Connection, seqs: Sequence[int]) -> set[int]:
    """Lock the queue rows still there (a cancel may have removed some meanwhile)."""
    rows = await conn.fetch(
        f"SELECT seq FROM {S}.backorders WHERE seq = ANY($1::bigint[]) ORDER BY seq FOR UPDATE",
        list(seqs),
    )
    return {r["seq"] for r in rows}


async def request_backorder_retry(
    conn: asyncpg.Connection, locations: Iterable[tuple[UUID, str]]
) -> None:
    keys = sorted(set(locations))
    if not keys:
        return
    await conn.execute(
        f"INSERT INTO {S}.backorder_wakeups (tenant_id, location_id)"
        " SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING",
        *_columns(keys, 2),
    )
    await conn.execute("SELECT pg_notify($1, '')", BACKORDER_CHANNEL)


async def claim_wakeups(conn: asyncpg.Connection) -> list[tuple[UUID, str]]:
    rows = await conn.fetch(f"DELETE FROM {S}.backorder_wakeups RETURNING tenant_id, location_id")
    return [(r["tenant_id"], r["location_id"]) for r in rows]


async def wake_every_backordered_location(conn: asyncpg.Connection) -> None:
    await conn.execute(
        f"INSERT INTO {S}.backorder_wakeups (tenant_id, location_id)"
        f" SELECT DISTINCT tenant_id, location_id FROM {S}.backorders ON CONFLICT DO NOTHING"
    )


# Integrity


async def integrity_inputs(
    conn: asyncpg.Connection, tenant_id: UUID | None
) -> tuple[list[StockRecord], dict[UUID, int], dict[UUID, tuple[int, int]]]:
    records = await conn.fetch(
        f"SELECT {RECORD_COLUMNS} FROM {RECORD_FROM}"
        " WHERE ($1::uuid IS NULL OR r.tenant_id = $1) ORDER BY r.tenant_id, r.location_id, r.sku",
        tenant_id,
    )
    active = await conn.fetch(
        f"SELECT l.stock_record_id, sum(l.quantity) AS reserved FROM {S}.reservation_lines l"
        f" JOIN {S}.reservations r ON r.id = l.reservation_id WHERE r.status = 'active'"
        " AND ($1::uuid IS NULL OR r.tenant_id = $1) GROUP BY l.stock_record_id",
        tenant_id,
    )
    ledger = await conn.fetch(
        f"SELECT stock_record_id, sum(quantity_change) AS q, sum(reserved_change) AS r"
        f" FROM {S}.movements WHERE ($1::uuid IS NULL OR tenant_id = $1)"
        " GROUP BY stock_record_id",
        tenant_id,
    )
    return (
        [StockRecord(**dict(r)) for r in records],
        {r["stock_record_id"]: r["reserved"] for r in active},
        {r["stock_record_id"]: (r["q"], r["r"]) for r in ledger},
    )
