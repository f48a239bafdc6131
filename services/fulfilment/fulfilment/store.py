"""SQL for the fulfilment schema."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from fulfilkit.outbox import Keyed, outbox_arrays, outbox_insert, relay_wake
from fulfilkit.outbox import channel as outbox_channel
from fulfilment.domain import Fulfillment, ShippingDetails

S = "fulfilment"
COLUMNS = (
    "id, tenant_id, fulfillment_id, sale, sale_id, location, status, shipping_provider,"
    " tracking_number, is_bulky, version, date_created, shop_channel, shop_name,"
    " sale_date_created, location_name, part"
)


async def by_sale_ids(
    conn: asyncpg.Connection, tenant_id: UUID, sale_ids: Sequence[str]
) -> dict[str, list[Fulfillment]]:
    """The fulfillments of each of these sales that has any: one per part, in part order."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM {S}.fulfillments WHERE tenant_id = $1"
        " AND sale_id = ANY($2::text[]) ORDER BY sale_id, part",
        tenant_id,
        list(sale_ids),
    )
    found: dict[str, list[Fulfillment]] = {}
    for r in rows:
        found.setdefault(r["sale_id"], []).append(Fulfillment(**dict(r)))
    return found


async def get(conn: asyncpg.Connection, tenant_id: UUID, fulfillment: UUID) -> Fulfillment | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM {S}.fulfillments WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        fulfillment,
    )
    return Fulfillment(**dict(row)) if row else None


async def get_many(
    conn: asyncpg.Connection, tenant_id: UUID, ids: Sequence[UUID], *, lock: bool = False
) -> dict[UUID, Fulfillment]:
    """The tenant's fulfillments among `ids`; `lock` takes their row locks in id order."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM {S}.fulfillments WHERE tenant_id = $1 AND id = ANY($2::uuid[])"
        + (" ORDER BY id FOR UPDATE" if lock else ""),
        tenant_id,
        list(ids),
    )
    return {r["id"]: Fulfillment(**dict(r)) for r in rows}


INSERT_COLUMNS = (
    "$1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[],"
    " $8::text[], $9::text[], $10::bool[], $11::int[], $12::timestamptz[], $13::text[],"
    " $14::text[], $15::timestamptz[], $16::text[], $17::smallint[]"
)


def _insert_arrays(items: Sequence[Fulfillment]) -> list[list[Any]]:
    return [
        [f.id for f in items],
        [f.tenant_id for f in items],
        [f.fulfillment_id for f in items],
        [f.sale for f in items],
        [f.sale_id for f in items],
        [f.location for f in items],
        [f.status for f in items],
        [f.shipping_provider for f in items],
        [f.tracking_number for f in items],
        [f.is_bulky for f in items],
        [f.version for f in items],
        [f.date_created for f in items],
        [f.shop_channel for f in items],
        [f.shop_name for f in items],
        [f.sale_date_created for f in items],
        [f.location_name for f in items],
        [f.part for f in items],
    ]


async def create(
    conn: asyncpg.Connection, items: Sequence[tuple[Fulfillment, ShippingDetails, Keyed]]
) -> list[Fulfillment]:
    """New fulfillments with their shipping details and events, in one statement (atomic
    without a transaction around it): a part of a sale (its location) that already has a
    fulfillment keeps it, and the new one's details and event are not written. Returns the
    fulfillments added, as stored. Each item's details and event are its fulfillment's."""
    if not items:
        return []
    details = [d for _, d, _ in items]
    events = [e for _, _, e in items]
    written = "e.event_id IN (SELECT x.event FROM unnest($1::uuid[], $22::uuid[]) AS x(id, event)"
    with relay_wake(conn, S) as notify:
        rows = await conn.fetch(
            f"WITH added AS (INSERT INTO {S}.fulfillments ({COLUMNS})"
            f" SELECT * FROM unnest({INSERT_COLUMNS})"
            f" ON CONFLICT (tenant_id, sale, location) DO NOTHING RETURNING {COLUMNS}),"
            f" details AS (INSERT INTO {S}.shipping_details (id, customer, shipping_address,"
            " sender) SELECT v.id, v.customer::jsonb, v.address::jsonb, v.sender::jsonb"
            " FROM unnest($18::uuid[], $19::text[], $20::text[], $21::text[])"
            " AS v(id, customer, address, sender) WHERE v.id IN (SELECT id FROM added)"
            " ON CONFLICT (id) DO NOTHING),"
            f" event AS ({outbox_insert(S, 22, written + ' JOIN added USING (id))')})"
            f" SELECT {COLUMNS}{_notifying(28, notify)} FROM added",
            *_insert_arrays([f for f, _, _ in items]),
            [d.fulfillment for d in details],
            [_json(d.customer) for d in details],
            [_json(d.shipping_address) for d in details],
            [_json(d.sender) for d in details],
            *outbox_arrays(events),
            *((outbox_channel(S),) if notify else ()),
        )
    return [Fulfillment(**{k: v for k, v in r.items() if k != "pg_notify"}) for r in rows]


def _notifying(param: int, notify: bool) -> str:
    """The column that wakes the outbox's relay through `NOTIFY` (its channel at `$param`),
    when `relay_wake` says the statement must."""
    return f", pg_notify(${param}, '')" if notify else ""


async def live_for_sales(
    conn: asyncpg.Connection, sales: Sequence[tuple[UUID, UUID]], *, lock: bool = False
) -> list[Fulfillment]:
    """The sales' fulfillments that are not canceled; `lock` takes their row locks in id order."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM {S}.fulfillments WHERE (tenant_id, sale) IN"
        " (SELECT * FROM unnest($1::uuid[], $2::uuid[])) AND status <> 'canceled'"
        + (" ORDER BY id FOR UPDATE" if lock else ""),
        [t for t, _ in sales],
        [s for _, s in sales],
    )
    return [Fulfillment(**dict(r)) for r in rows]


async def save_statuses(conn: asyncpg.Connection, items: Sequence[Fulfillment]) -> None:
    if items:
        await conn.execute(
            f"UPDATE {S}.fulfillments AS f SET status = v.status, version = v.version,"
            " updated_at = now() FROM unnest($1::uuid[], $2::text[], $3::int[])"
            " AS v(id, status, version) WHERE f.id = v.id",
            [f.id for f in items],
            [f.status for f in items],
            [f.version for f in items],
        )


async def save_statuses_if_unchanged(
    conn: asyncpg.Connection, tenant_id: UUID, moves: Sequence[tuple[Fulfillment, Keyed]]
) -> set[UUID]:
    """Compare-and-set for many: write each moved fulfillment and its (already built) event
    only if its stored row is still the version before it, in one statement. Rows are
    locked in id order (as every locking path here does), so two such writers never
    deadlock. Returns the ids written; the others changed since they were read."""
    if not moves:
        return set()
    moved = [f for f, _ in moves]
    written = "e.event_id IN (SELECT x.event FROM unnest($2::uuid[], $5::uuid[]) AS x(id, event)"
    with relay_wake(conn, S) as notify:
        rows = await conn.fetch(
            f"WITH v AS (SELECT * FROM unnest($2::uuid[], $3::text[], $4::int[])"
            " AS v(id, status, version)),"
            f" locked AS (SELECT f.id FROM {S}.fulfillments f JOIN v ON v.id = f.id"
            " WHERE f.tenant_id = $1 AND f.version = v.version - 1"
            " ORDER BY f.id FOR UPDATE OF f),"
            f" moved AS (UPDATE {S}.fulfillments f SET status = v.status, version = v.version,"
            " updated_at = now() FROM v WHERE f.id = v.id AND f.id IN (SELECT id FROM locked)"
            " RETURNING f.id),"
            f" event AS ({outbox_insert(S, 5, written + ' JOIN moved USING (id))')})"
            f" SELECT id{_notifying(11, notify)} FROM moved",
            tenant_id,
            [f.id for f in moved],
            [f.status for f in moved],
            [f.version for f in moved],
            *outbox_arrays([e for _, e in moves]),
            *((outbox_channel(S),) if notify else ()),
        )
    return {r["id"] for r in rows}


async def with_shipping_details(
    conn: asyncpg.Connection, tenant_id: UUID, fulfillment: UUID
) -> tuple[Fulfillment, ShippingDetails | None] | None:
    """The tenant's fulfillment and where it ships to (None when that was never recorded),
    in one read; None when the tenant has no such fulfillment."""
    row = await conn.fetchrow(
        f"SELECT {', '.join('f.' + c.strip() for c in COLUMNS.split(','))},"
        " d.id AS details, d.customer, d.shipping_address, d.sender"
        f" FROM {S}.fulfillments f LEFT JOIN {S}.shipping_details d ON d.id = f.id"
        " WHERE f.tenant_id = $1 AND f.id = $2",
        tenant_id,
        fulfillment,
    )
    if row is None:
        return None
    fields = dict(row)
    details_id = fields.pop("details")
    customer, address = fields.pop("customer"), fields.pop("shipping_address")
    sender = fields.pop("sender")
    details = None if details_id is None else ShippingDetails(details_id, customer, address, sender)
    return Fulfillment(**fields), details


def _json(value: Any) -> str | None:
    """jsonb values go into unnest() as text: a list would be read as a nested array."""
    return None if value is None else orjson.dumps(value).decode()
