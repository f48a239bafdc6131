"""SQL for the orders schema."""

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from fulfilkit.inbox import Unrecorded
from fulfilkit.outbox import Keyed, add_events, outbox_arrays, outbox_insert, relay_wake
from fulfilkit.outbox import channel as outbox_channel
from orders.domain import Edit, Sale, StatusChange
from orders.returns import Return

S = "orders"
# Notified with a sale's id when its reservation's outcome moves it on, on commit
# (`fulfilkit.notify`): what a create or an edit waits for. Its other changes wake nobody.
STATUS_CHANNEL = "orders_sale_status"
# The status changes STATUS_CHANNEL is notified of: a sale leaving `awaiting_stock` (to
# pending, backordered or canceled), as `settled` reads it.
AN_OUTCOME = "from_status = 'awaiting_stock'"
SALE_COLUMNS = (
    "id, tenant_id, sale_id, status, version, shop, location_id, lines, customer,"
    " shipping_address, cancel_reason, reservation, fulfillments, created_at, updated_at,"
    " priority, instructions, ship_by, deliver_by, invoice_value, cash_on_delivery, properties,"
    " allow_split, reservation_version, shipped_parts"
)


def _json(value: Any) -> str | None:
    """jsonb values go into unnest() as text: a list would be read as a nested array."""
    return None if value is None else orjson.dumps(value).decode()


def _sale(row: asyncpg.Record) -> Sale:
    return Sale(**dict(row))


ONLY_ADDED_SALES_EVENTS = (
    "e.event_id IN (SELECT event_id FROM new WHERE id IN (SELECT id FROM added))"
)


async def insert_sales(
    conn: asyncpg.Connection, sales: Sequence[Sale], actor: str, created: Sequence[Keyed]
) -> set[UUID]:
    """Insert new sales (all of one tenant), the first entry of each one's history and its
    `created` event (`created[i]` is `sales[i]`'s), in one statement; the ids inserted. A sale
    whose sale_id is taken is left out with its history and event. Rows go in in sale_id
    order, so two concurrent batches sharing sale_ids wait for each other in the same order
    instead of deadlocking on the unique index."""
    inserted, _ = await insert_sales_of_known_skus(conn, sales, actor, created, ())
    return inserted


async def insert_sales_of_known_skus(
    conn: asyncpg.Connection,
    sales: Sequence[Sale],
    actor: str,
    created: Sequence[Keyed],
    skus: Collection[str],
) -> tuple[set[UUID], set[str]]:
    """As `insert_sales`, in the same one statement, if the tenant's catalogue holds every
    one of `skus`: (the ids inserted, no SKU). Otherwise nothing is written: (no id, the
    SKUs the catalogue lacks)."""
    if not sales:
        return set(), set()
    with relay_wake(conn, S) as notify:
        row = await conn.fetchrow(
            _INSERT_SALES_NOTIFYING if notify else _INSERT_SALES,
            _new_sales(sales, created),
            sales[0].tenant_id,
            sales[0].status,
            actor,
            *outbox_arrays(created),
            list(skus),
            *((outbox_channel(S),) if notify else ()),
        )
    return set(row["inserted"] or ()), set(row["missing"] or ())


def _new_sales(sales: Sequence[Sale], created: Sequence[Keyed]) -> str:
    """The new sales' columns as one JSON array of objects (`jsonb_to_recordset`): one
    parameter for asyncpg to bind, where an array a column made it check every element of
    each. Its JSON values are those `_json` wrote, the dates the API took (with their offset)."""
    return orjson.dumps(
        [
            {
                "id": s.id,
                "sale_id": s.sale_id,
                "shop": s.shop,
                "location_id": s.location_id,
                "lines": s.lines,
                "customer": s.customer,
                "shipping_address": s.shipping_address,
                "created_at": s.created_at,
                "event_id": event.id,
                "priority": s.priority,
                "instructions": s.instructions,
                "ship_by": s.ship_by,
                "deliver_by": s.deliver_by,
                "invoice_value": s.invoice_value,
                "cash_on_delivery": s.cash_on_delivery,
                "properties": s.properties,
                "allow_split": s.allow_split,
            }
            for s, (_, event) in zip(sales, created, strict=True)
        ]
    ).decode()


def _insert_sales(notify: bool) -> str:
    return (
        "WITH missing AS (SELECT m.sku FROM unnest($11::text[]) AS m(sku) WHERE NOT EXISTS"
        f" (SELECT FROM {S}.catalogue c WHERE c.tenant_id = $2 AND c.sku = m.sku)),"
        " new AS (SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS n(id uuid, sale_id text,"
        " shop jsonb, location_id text, lines jsonb, customer jsonb, shipping_address jsonb,"
        " created_at timestamptz, event_id uuid, priority text, instructions text,"
        " ship_by timestamptz, deliver_by timestamptz, invoice_value jsonb,"
        " cash_on_delivery jsonb, properties jsonb, allow_split bool)"
        " WHERE NOT EXISTS (SELECT FROM missing)),"
        f" added AS (INSERT INTO {S}.sales (id, tenant_id, sale_id, status, version, shop,"
        " location_id, lines, customer, shipping_address, created_at, updated_at, priority,"
        " instructions, ship_by, deliver_by, invoice_value, cash_on_delivery, properties,"
        " allow_split)"
        " SELECT id, $2, sale_id, $3, 1, shop, location_id, lines, customer, shipping_address,"
        " created_at, created_at, priority, instructions, ship_by, deliver_by, invoice_value,"
        " cash_on_delivery, properties, allow_split FROM new"
        " ORDER BY sale_id ON CONFLICT (tenant_id, sale_id) DO NOTHING RETURNING id, created_at),"
        f" history AS (INSERT INTO {S}.status_history (sale, from_status, to_status, reason,"
        " actor, at) SELECT id, NULL, $3, 'created', $4, created_at FROM added),"
        f" events AS ({outbox_insert(S, 5, ONLY_ADDED_SALES_EVENTS)}),"
        + (
            " notified AS (SELECT id, pg_notify($12, '') FROM added)"
            if notify
            else " notified AS (SELECT id FROM added)"
        )
        + " SELECT (SELECT array_agg(id) FROM notified) AS inserted,"
        " (SELECT array_agg(sku) FROM missing) AS missing"
    )


_INSERT_SALES = _insert_sales(notify=False)
_INSERT_SALES_NOTIFYING = _insert_sales(notify=True)


async def lock_sales(conn: asyncpg.Connection, ids: Iterable[UUID]) -> dict[UUID, Sale]:
    rows = await conn.fetch(
        f"SELECT {SALE_COLUMNS} FROM {S}.sales WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        sorted(set(ids)),
    )
    return {r["id"]: _sale(r) for r in rows}


async def record_and_lock(
    conn: asyncpg.Connection, unrecorded: Unrecorded, sales_of: Sequence[UUID | None]
) -> tuple[set[UUID], dict[UUID, Sale]]:
    """Record a consumer batch's events in the inbox and lock the sales of those it recorded
    (`sales_of[i]` is the sale of `unrecorded.ids[i]`'s event, None for one about no sale),
    in id order, in one statement: (the ids recorded, the sales locked). The lock comes after
    the insert, as it did in two statements: it reads what the insert returned."""
    rows = await conn.fetch(
        f"WITH fresh AS ({unrecorded.cte(1)}),"
        f" locked AS (SELECT {SALE_COLUMNS} FROM {S}.sales WHERE id IN (SELECT e.sale"
        " FROM unnest($2::uuid[], $3::uuid[]) AS e(id, sale) JOIN fresh f ON f.event_id = e.id)"
        " ORDER BY id FOR UPDATE)"
        " SELECT f.event_id AS fresh, l.* FROM fresh f LEFT JOIN locked l ON false"
        " UNION ALL SELECT NULL, l.* FROM locked l",
        *unrecorded.params(),
        list(sales_of),
    )
    fresh: set[UUID] = set()
    sales: dict[UUID, Sale] = {}
    for row in rows:
        if (event_id := row["fresh"]) is not None:
            fresh.add(event_id)
        else:
            fields = dict(row)
            del fields["fresh"]
            sales[fields["id"]] = Sale(**fields)
    return fresh, sales


async def lock_sales_by_sale_id(
    conn: asyncpg.Connection, tenant_id: UUID, sale_ids: Sequence[str]
) -> dict[str, Sale]:
    rows = await conn.fetch(
        f"SELECT {SALE_COLUMNS} FROM {S}.sales WHERE tenant_id = $1 AND sale_id = ANY($2::text[])"
        " ORDER BY id FOR UPDATE",
        tenant_id,
        list(sale_ids),
    )
    return {r["sale_id"]: _sale(r) for r in rows}


async def save(
    conn: asyncpg.Connection,
    sales: Sequence[Sale],
    changes: Sequence[StatusChange],
    actor: str,
    events: Sequence[Keyed],
) -> None:
    """Write sales, the history of their status changes and their events in one statement;
    notify STATUS_CHANNEL with the id of each sale whose reservation's outcome this is
    (`AN_OUTCOME`), and the outbox relay once."""
    if not sales:
        return
    with relay_wake(conn, S, adds=bool(events)) as notify:
        await conn.execute(
            f"WITH saved AS (UPDATE {S}.sales AS s SET status = v.status, version = v.version,"
            " reservation = v.reservation::jsonb, fulfillments = v.fulfillments::jsonb,"
            " cancel_reason = v.cancel_reason, shipped_parts = v.shipped_parts::jsonb,"
            " updated_at = now() FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[],"
            " $5::text[], $6::text[], $20::text[])"
            " AS v(id, status, version, reservation, fulfillments, cancel_reason, shipped_parts)"
            " WHERE s.id = v.id RETURNING s.id),"
            f" history AS (INSERT INTO {S}.status_history (sale, from_status, to_status, reason,"
            " actor) SELECT h.*, $11 FROM unnest($7::uuid[], $8::text[], $9::text[], $10::text[])"
            " AS h RETURNING sale, from_status),"
            f" events AS ({outbox_insert(S, 12)} RETURNING 1)"
            f" SELECT pg_notify($18, sale::text) FROM history WHERE {AN_OUTCOME}"
            " UNION ALL SELECT pg_notify($19, '') WHERE $21::bool AND EXISTS (SELECT FROM events)",
            [s.id for s in sales],
            [s.status for s in sales],
            [s.version for s in sales],
            [_json(s.reservation) for s in sales],
            [_json(s.fulfillments) for s in sales],
            [s.cancel_reason for s in sales],
            [c.sale.id for c in changes],
            [c.previous for c in changes],
            [c.sale.status for c in changes],
            [c.reason for c in changes],
            actor,
            *outbox_arrays(events),
            STATUS_CHANNEL,
            outbox_channel(S),
            [_json(s.shipped_parts) for s in sales],
            notify,
        )


async def save_edit(conn: asyncpg.Connection, edit: Edit, actor: str, event: Keyed) -> None:
    """Write an edited sale (locked by the caller), its history entry (reason `edited`) and
    its `sale.updated` event in one statement. Unlike `save`, it does not notify
    STATUS_CHANNEL: an edit is not an outcome a waiting request wants, and the PATCH that
    waits for the new reservation's outcome expects its sale before this commits."""
    sale = edit.sale
    with relay_wake(conn, S) as notify:
        await conn.execute(
            f"WITH saved AS (UPDATE {S}.sales SET status = $2, version = $3,"
            " lines = $4::text::jsonb, location_id = $5, customer = $6::text::jsonb,"
            " shipping_address = $7::text::jsonb,"
            " priority = $8, instructions = $9, ship_by = $10, deliver_by = $11,"
            " invoice_value = $12::text::jsonb, cash_on_delivery = $13::text::jsonb,"
            " properties = $14::text::jsonb,"
            " reservation = $15::text::jsonb, reservation_version = $16, allow_split = $20,"
            " updated_at = now() WHERE id = $1 RETURNING id),"
            f" history AS (INSERT INTO {S}.status_history (sale, from_status, to_status, reason,"
            " actor) SELECT id, $17, $2, $18, $19 FROM saved),"
            f" events AS ({outbox_insert(S, 21)} RETURNING 1)"
            " SELECT pg_notify($27, '') WHERE $28::bool AND EXISTS (SELECT FROM events)",
            sale.id,
            sale.status,
            sale.version,
            _json(sale.lines),
            sale.location_id,
            _json(sale.customer),
            _json(sale.shipping_address),
            sale.priority,
            sale.instructions,
            sale.ship_by,
            sale.deliver_by,
            _json(sale.invoice_value),
            _json(sale.cash_on_delivery),
            _json(sale.properties),
            _json(sale.reservation),
            sale.reservation_version,
            edit.previous,
            edit.status_change.reason,
            actor,
            sale.allow_split,
            *outbox_arrays([event]),
            outbox_channel(S),
            notify,
        )


async def get_sale(conn: asyncpg.Connection, tenant_id: UUID, sale_id: str) -> Sale | None:
    row = await conn.fetchrow(
        f"SELECT {SALE_COLUMNS} FROM {S}.sales WHERE tenant_id = $1 AND sale_id = $2",
        tenant_id,
        sale_id,
    )
    return _sale(row) if row else None


async def save_if_unchanged(
    conn: asyncpg.Connection,
    change: StatusChange,
    actor: str,
    events: Sequence[Keyed],
    shipped_parts_read: Sequence[dict[str, Any]] = (),
) -> bool:
    """Compare-and-set one sale read without a lock: write it, its history and its events
    only if it is still as read (the version before `change`, and the same reservation,
    fulfillments and shipped parts, which change without a new version; the parts as read
    are `shipped_parts_read`), in one statement. False otherwise."""
    sale = change.sale
    with relay_wake(conn, S) as notify:
        notified = await conn.fetch(
            f"WITH saved AS (UPDATE {S}.sales SET status = $2, version = $3, cancel_reason = $6,"
            " shipped_parts = $18::text::jsonb, updated_at = now() WHERE id = $1"
            " AND version = $3 - 1 AND reservation IS NOT DISTINCT FROM $4::text::jsonb"
            " AND fulfillments = $5::text::jsonb AND shipped_parts = $19::text::jsonb"
            " RETURNING id),"
            f" history AS (INSERT INTO {S}.status_history (sale, from_status, to_status, reason,"
            " actor) SELECT id, $7, $2, $8, $9 FROM saved RETURNING sale, from_status),"
            f" events AS ({outbox_insert(S, 10, 'EXISTS (SELECT FROM saved)')} RETURNING 1)"
            f" SELECT CASE WHEN {AN_OUTCOME} THEN pg_notify($16, sale::text) END FROM history"
            " UNION ALL SELECT pg_notify($17, '') WHERE $20::bool AND EXISTS (SELECT FROM events)",
            sale.id,
            sale.status,
            sale.version,
            _json(sale.reservation),
            _json(sale.fulfillments),
            sale.cancel_reason,
            change.previous,
            change.reason,
            actor,
            *outbox_arrays(events),
            STATUS_CHANNEL,
            outbox_channel(S),
            _json(sale.shipped_parts),
            _json(list(shipped_parts_read)),
            notify,
        )
    return bool(notified)


async def settled(conn: asyncpg.Connection, ids: Collection[str]) -> list[str]:
    """Those of these sales (platform ids) whose reservation outcome is in."""
    rows = await conn.fetch(
        f"SELECT id::text FROM {S}.sales WHERE id = ANY($1::uuid[]) AND status <> 'awaiting_stock'",
        list(ids),
    )
    return [r["id"] for r in rows]


WITH_HISTORY = (
    f"SELECT {SALE_COLUMNS}, (SELECT coalesce(jsonb_agg(jsonb_build_object("
    "'from_status', h.from_status, 'to_status', h.to_status, 'reason', h.reason,"
    f" 'actor', h.actor, 'at', h.at) ORDER BY h.id), '[]') FROM {S}.status_history h"
    f" WHERE h.sale = s.id) AS history FROM {S}.sales s"
)


def _with_history(row: asyncpg.Record) -> tuple[Sale, list[dict[str, Any]]]:
    fields = dict(row)
    history = fields.pop("history")
    return Sale(**fields), history


async def sales_with_history(
    conn: asyncpg.Connection, ids: Sequence[UUID]
) -> dict[UUID, tuple[Sale, list[dict[str, Any]]]]:
    rows = await conn.fetch(f"{WITH_HISTORY} WHERE s.id = ANY($1::uuid[])", list(ids))
    return {row["id"]: _with_history(row) for row in rows}


async def sale_with_history(
    conn: asyncpg.Connection, tenant_id: UUID, sale_id: str
) -> tuple[Sale, list[dict[str, Any]]] | None:
    row = await conn.fetchrow(
        f"{WITH_HISTORY} WHERE s.tenant_id = $1 AND s.sale_id = $2", tenant_id, sale_id
    )
    return _with_history(row) if row else None


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching what starts with `prefix`, its wildcards taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


async def list_sales(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    *,
    statuses: Sequence[str],
    channel: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    priority: str | None = None,
    ship_by_before: datetime | None = None,
    ship_by_after: datetime | None = None,
    sale_id_prefix: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[Sale], int]:
    """A page of sales and how many match. `ship_by_before`/`ship_by_after` leave out the
    sales without a ship-by date; `sale_id_prefix` keeps those whose sale_id starts so."""
    where = (
        "tenant_id = $1 AND (cardinality($2::text[]) = 0 OR status = ANY($2::text[]))"
        " AND ($3::text IS NULL OR shop->>'channel' = $3)"
        " AND ($4::timestamptz IS NULL OR created_at >= $4)"
        " AND ($5::timestamptz IS NULL OR created_at < $5)"
        " AND ($6::text IS NULL OR priority = $6)"
        " AND ($7::timestamptz IS NULL OR ship_by < $7)"
        " AND ($8::timestamptz IS NULL OR ship_by >= $8)"
        " AND ($9::text IS NULL OR sale_id LIKE $9 ESCAPE '\\')"
    )
    args = (
        tenant_id,
        list(statuses),
        channel,
        created_from,
        created_to,
        priority,
        ship_by_before,
        ship_by_after,
        None if sale_id_prefix is None else _like_prefix(sale_id_prefix),
    )
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.sales WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT {SALE_COLUMNS} FROM {S}.sales WHERE {where}"
        " ORDER BY created_at, id LIMIT $10 OFFSET $11",
        *args,
        limit,
        offset,
    )
    return [_sale(r) for r in rows], total


async def known_skus(conn: asyncpg.Connection, tenant_id: UUID, skus: Collection[str]) -> set[str]:
    """Those of these SKUs that the tenant's catalogue holds (as far as orders has heard)."""
    rows = await conn.fetch(
        f"SELECT sku FROM {S}.catalogue WHERE tenant_id = $1 AND sku = ANY($2::text[])",
        tenant_id,
        list(skus),
    )
    return {r["sku"] for r in rows}


async def add_to_catalogue(conn: asyncpg.Connection, skus: Sequence[tuple[UUID, str]]) -> None:
    """Record SKUs (tenant, sku) as in the catalogue; one known already stays as it is."""
    if skus:
        await conn.execute(
            f"INSERT INTO {S}.catalogue (tenant_id, sku) SELECT * FROM unnest($1::uuid[],"
            " $2::text[]) ORDER BY 1, 2 ON CONFLICT DO NOTHING",
            [t for t, _ in skus],
            [s for _, s in skus],
        )


# --- returns ----------------------------------------------------------------------------------

RETURN_COLUMNS = (
    "id, tenant_id, sale, sale_id, status, version, reason, lines, received_lines,"
    " created_at, updated_at, received_at, closed_at, canceled_at"
)


def _return(row: asyncpg.Record) -> Return:
    return Return(**dict(row))


async def lock_sale_for_return(
    conn: asyncpg.Connection, tenant_id: UUID, sale_id: str
) -> Sale | None:
    """The sale, locked: its returns are decided one at a time."""
    row = await conn.fetchrow(
        f"SELECT {SALE_COLUMNS} FROM {S}.sales WHERE tenant_id = $1 AND sale_id = $2 FOR UPDATE",
        tenant_id,
        sale_id,
    )
    return _sale(row) if row else None


async def returns_of_sale(conn: asyncpg.Connection, sale: UUID) -> list[Return]:
    rows = await conn.fetch(
        f"SELECT {RETURN_COLUMNS} FROM {S}.returns WHERE sale = $1 ORDER BY created_at, id", sale
    )
    return [_return(r) for r in rows]


async def returns_of_sales(
    conn: asyncpg.Connection, sales: Collection[UUID]
) -> dict[UUID, list[Return]]:
    """The returns of each of these sales, oldest first (a sale without any is left out)."""
    rows = await conn.fetch(
        f"SELECT {RETURN_COLUMNS} FROM {S}.returns WHERE sale = ANY($1::uuid[])"
        " ORDER BY created_at, id",
        list(sales),
    )
    found: dict[UUID, list[Return]] = {}
    for row in rows:
        found.setdefault(row["sale"], []).append(_return(row))
    return found


async def insert_return(conn: asyncpg.Connection, ret: Return, event: Keyed) -> None:
    await conn.execute(
        f"INSERT INTO {S}.returns (id, tenant_id, sale, sale_id, status, version, reason, lines,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $9)",
        ret.id,
        ret.tenant_id,
        ret.sale,
        ret.sale_id,
        ret.status,
        ret.version,
        ret.reason,
        _json(ret.lines),
        ret.created_at,
    )
    await add_events(conn, S, [event])


async def lock_return(conn: asyncpg.Connection, tenant_id: UUID, return_id: UUID) -> Return | None:
    row = await conn.fetchrow(
        f"SELECT {RETURN_COLUMNS} FROM {S}.returns WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant_id,
        return_id,
    )
    return _return(row) if row else None


async def save_return(conn: asyncpg.Connection, ret: Return, event: Keyed) -> None:
    await conn.execute(
        f"UPDATE {S}.returns SET status = $2, version = $3, received_lines = $4::text::jsonb,"
        " updated_at = $5, received_at = $6, closed_at = $7, canceled_at = $8 WHERE id = $1",
        ret.id,
        ret.status,
        ret.version,
        _json(ret.received_lines),
        ret.updated_at,
        ret.received_at,
        ret.closed_at,
        ret.canceled_at,
    )
    await add_events(conn, S, [event])


async def get_return(conn: asyncpg.Connection, tenant_id: UUID, return_id: UUID) -> Return | None:
    row = await conn.fetchrow(
        f"SELECT {RETURN_COLUMNS} FROM {S}.returns WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        return_id,
    )
    return _return(row) if row else None


async def list_returns(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    *,
    statuses: Sequence[str],
    sale_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Return], int]:
    """A page of returns, oldest first, and how many match."""
    where = (
        "tenant_id = $1 AND (cardinality($2::text[]) = 0 OR status = ANY($2::text[]))"
        " AND ($3::text IS NULL OR sale_id = $3)"
    )
    args = (tenant_id, list(statuses), sale_id)
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.returns WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT {RETURN_COLUMNS} FROM {S}.returns WHERE {where}"
        " ORDER BY created_at, id LIMIT $4 OFFSET $5",
        *args,
        limit,
        offset,
    )
    return [_return(r) for r in rows], total
