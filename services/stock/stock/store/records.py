"""Stock records and their append-only ledger of movements."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from stock.domain import LedgerEntry, Movement, RecordKey, StockRecord
from stock.store._sql import RECORD_COLUMNS, RECORD_FROM, S, columns


async def insert_stock_record(conn: asyncpg.Connection, record: StockRecord) -> bool:
    """False when the location already has a record for the SKU; raises
    `asyncpg.ForeignKeyViolationError` when the product or location does not exist."""
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
        *columns(keys, 3),
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


async def has_stock(conn: asyncpg.Connection, tenant_id: UUID, sku: str) -> bool:
    """Whether any location holds or reserves units of the SKU (its records, locked)."""
    rows = await conn.fetch(
        f"SELECT quantity, reserved FROM {S}.stock_records WHERE tenant_id = $1 AND sku = $2"
        " ORDER BY location_id FOR UPDATE",
        tenant_id,
        sku,
    )
    return any(r["quantity"] or r["reserved"] for r in rows)


async def get_records(
    conn: asyncpg.Connection, tenant_id: UUID, ids: Sequence[UUID]
) -> dict[UUID, StockRecord]:
    rows = await conn.fetch(
        f"SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE r.tenant_id = $1"
        " AND r.id = ANY($2::uuid[])",
        tenant_id,
        list(ids),
    )
    return {r["id"]: StockRecord(**dict(r)) for r in rows}


async def list_records(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    skus: Sequence[str],
    locations: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[list[StockRecord], int]:
    where = (
        "r.tenant_id = $1 AND (cardinality($2::text[]) = 0 OR r.sku = ANY($2))"
        " AND (cardinality($3::text[]) = 0 OR r.location_id = ANY($3))"
    )
    args = (tenant_id, list(skus), list(locations))
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.stock_records r WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE {where}"
        " ORDER BY r.location_id, r.sku LIMIT $4 OFFSET $5",
        *args,
        limit,
        offset,
    )
    return [StockRecord(**dict(r)) for r in rows], total


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


MOVEMENT_COLUMNS = [
    "tenant_id",
    "stock_record_id",
    "location_id",
    "sku",
    "reason",
    "quantity_change",
    "reserved_change",
    "quantity_after",
    "reserved_after",
    "actor",
    "reference",
    "notes",
]


async def insert_movements(
    conn: asyncpg.Connection,
    entries: Sequence[LedgerEntry],
    actor: str,
    notes: str | None = None,
) -> None:
    """The entries as ledger rows, by binary COPY: a reservation batch writes hundreds, and
    COPY takes each row's values as they are, where an `unnest` of arrays has asyncpg check
    every element (about a third of the client's CPU per row, docs/benchmarks.md)."""
    if not entries:
        return
    await conn.copy_records_to_table(
        "movements",
        schema_name=S,
        columns=MOVEMENT_COLUMNS,
        records=[
            (
                e.tenant_id,
                e.record_id,
                e.location_id,
                e.sku,
                e.reason,
                e.quantity_change,
                e.reserved_change,
                e.quantity_after,
                e.reserved_after,
                actor,
                e.reference,
                notes,
            )
            for e in entries
        ],
    )


MOVEMENT_FIELDS = (
    "id, stock_record_id, location_id, sku, reason, quantity_change, reserved_change,"
    " quantity_after, reserved_after, actor, reference, notes, created_at"
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
) -> tuple[list[Movement], int]:
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
        f"SELECT {MOVEMENT_FIELDS} FROM {S}.movements WHERE {where} ORDER BY id LIMIT $8 OFFSET $9",
        *args,
        limit,
        offset,
    )
    return [Movement(**dict(r)) for r in rows], total


async def integrity_inputs(
    conn: asyncpg.Connection, tenant_id: UUID | None
) -> tuple[list[StockRecord], dict[UUID, int], dict[UUID, tuple[int, int]]]:
    """Every record, the units its active reservations hold, and the sums of its ledger."""
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
