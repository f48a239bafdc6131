"""SQL for the fulfilment schema."""

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from fulfilment.domain import Fulfillment

S = "fulfilment"
COLUMNS = (
    "id, tenant_id, fulfillment_id, sale, sale_id, location, status, shipping_provider,"
    " tracking_number, is_bulky, version, date_created"
)


async def live_by_sale_ids(
    conn: asyncpg.Connection, tenant_id: UUID, sale_ids: Sequence[str]
) -> dict[str, Fulfillment]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM {S}.fulfillments WHERE tenant_id = $1"
        " AND sale_id = ANY($2::text[]) AND status <> 'canceled'",
        tenant_id, list(sale_ids),
    )
    return {r["sale_id"]: Fulfillment(**dict(r)) for r in rows}


async def get(conn: asyncpg.Connection, tenant_id: UUID, fulfillment: UUID) -> Fulfillment | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM {S}.fulfillments WHERE tenant_id = $1 AND id = $2",
        tenant_id, fulfillment,
    )
    return Fulfillment(**dict(row)) if row else None


async def insert_many(conn: asyncpg.Connection, items: Sequence[Fulfillment]) -> list[UUID]:
    """Insert new fulfillments; a sale that already has a live one keeps it. Returns ids added."""
    rows = await conn.fetch(
        f"INSERT INTO {S}.fulfillments ({COLUMNS})"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[],"
        " $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[], $11::int[],"
        " $12::timestamptz[]) ON CONFLICT (tenant_id, sale) WHERE status <> 'canceled'"
        " DO NOTHING RETURNING id",
        [f.id for f in items], [f.tenant_id for f in items], [f.fulfillment_id for f in items],
        [f.sale for f in items], [f.sale_id for f in items], [f.location for f in items],
        [f.status for f in items], [f.shipping_provider for f in items],
        [f.tracking_number for f in items], [f.is_bulky for f in items],
        [f.version for f in items], [f.date_created for f in items],
    )
    return [r["id"] for r in rows]
