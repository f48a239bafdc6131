"""Reservations with their lines, the backorder queue and its wake-ups."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from stock.domain import Place, Policy, RecordKey, Reservation
from stock.routing import Site
from stock.store._sql import S, columns

BACKORDER_CHANNEL = "stock_backorders"


async def reservations_for(
    conn: asyncpg.Connection, sales: Iterable[tuple[UUID, UUID]], lock: bool = False
) -> dict[tuple[UUID, UUID], Reservation]:
    """The sales' reservations with their lines, in one round trip (none for no sales)."""
    keys = sorted(set(sales))
    if not keys:
        return {}
    rows = await conn.fetch(
        f"SELECT r.id, r.tenant_id, r.sale, r.sale_id, r.location_id, r.status, r.version,"
        " r.sale_version, (SELECT coalesce(json_agg(json_build_array(l.sku, l.quantity,"
        " l.stock_record_id, s.location_id) ORDER BY l.sku, s.location_id), '[]')"
        f" FROM {S}.reservation_lines l JOIN {S}.stock_records s ON s.id = l.stock_record_id"
        f" WHERE l.reservation_id = r.id) AS lines FROM {S}.reservations r"
        " WHERE (r.tenant_id, r.sale) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))"
        " ORDER BY r.id" + (" FOR UPDATE OF r" if lock else ""),
        *columns(keys, 2),
    )
    found = {}
    for r in rows:
        fields = dict(r)
        lines = fields.pop("lines")
        fields["lines"] = [(sku, qty, UUID(rid)) for sku, qty, rid, _ in lines]
        fields["at"] = {UUID(rid): loc for _, _, rid, loc in lines if loc != fields["location_id"]}
        found[(r["tenant_id"], r["sale"])] = Reservation(**fields)
    return found


RESERVATION_COLUMNS = [
    "id",
    "tenant_id",
    "sale",
    "sale_id",
    "location_id",
    "status",
    "version",
    "sale_version",
]
LINE_COLUMNS = ["reservation_id", "stock_record_id", "sku", "quantity"]


async def insert_reservations(conn: asyncpg.Connection, rows: Sequence[Reservation]) -> None:
    """New reservations and their lines, by binary COPY (hundreds a batch; see
    `records.insert_movements`); a sale reserved twice is refused by the unique (tenant,
    sale), as an insert would be."""
    if not rows:
        return
    await conn.copy_records_to_table(
        "reservations",
        schema_name=S,
        columns=RESERVATION_COLUMNS,
        records=[
            (
                r.id,
                r.tenant_id,
                r.sale,
                r.sale_id,
                r.location_id,
                r.status,
                r.version,
                r.sale_version,
            )
            for r in rows
        ],
    )
    await _insert_lines(conn, rows)


async def _insert_lines(conn: asyncpg.Connection, rows: Sequence[Reservation]) -> None:
    lines = [(r.id, ln[2], ln[0], ln[1]) for r in rows for ln in r.lines]
    if lines:
        await conn.copy_records_to_table(
            "reservation_lines", schema_name=S, columns=LINE_COLUMNS, records=lines
        )


async def update_reservations(conn: asyncpg.Connection, rows: Sequence[Reservation]) -> None:
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


async def rewrite_reservations(conn: asyncpg.Connection, rows: Sequence[Reservation]) -> None:
    """Write reservations whose lines changed (a sale's edit): their place, status, version
    and sale version, and their lines anew."""
    if not rows:
        return
    await conn.execute(
        f"UPDATE {S}.reservations AS r SET location_id = v.location_id, status = v.status,"
        " version = v.version, sale_version = v.sale_version, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::int[])"
        " AS v(id, location_id, status, version, sale_version) WHERE r.id = v.id",
        [r.id for r in rows],
        [r.location_id for r in rows],
        [r.status for r in rows],
        [r.version for r in rows],
        [r.sale_version for r in rows],
    )
    await conn.execute(
        f"DELETE FROM {S}.reservation_lines WHERE reservation_id = ANY($1::uuid[])",
        [r.id for r in rows],
    )
    await _insert_lines(conn, rows)


async def delete_reservations(conn: asyncpg.Connection, ids: Iterable[UUID]) -> None:
    """Forget reservations that hold nothing any more: a sale edited to lines that do not
    fit waits in the backorder queue, as a sale created short does, without a row."""
    ids = sorted(set(ids))
    if ids:
        await conn.execute(
            f"WITH lines AS (DELETE FROM {S}.reservation_lines"
            " WHERE reservation_id = ANY($1::uuid[]))"
            f" DELETE FROM {S}.reservations WHERE id = ANY($1::uuid[])",
            ids,
        )


async def known_for_batch(
    conn: asyncpg.Connection,
    locations: Iterable[tuple[UUID, str]],
    skus: Iterable[tuple[UUID, str]],
    sales: Iterable[tuple[UUID, UUID]],
) -> tuple[dict[tuple[UUID, str], Place], dict[tuple[UUID, str], Policy], set[tuple[UUID, UUID]]]:
    """Which of these locations exist (with their names and addresses), which SKUs exist
    (with their stock policies) and which of these sales wait in the backorder queue: three
    lookups in one round trip."""
    locations, skus, sales = list(locations), list(skus), list(sales)
    rows = await conn.fetch(
        f"SELECT 1 AS kind, tenant_id, location_id AS code, NULL::uuid AS sale, name, address,"
        f" NULL::jsonb AS policy FROM {S}.locations"
        " WHERE (tenant_id, location_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
        f" UNION ALL SELECT 2, tenant_id, sku, NULL, NULL, NULL, jsonb_build_array(backorders,"
        f" preorder, infinite) FROM {S}.products"
        " WHERE (tenant_id, sku) IN (SELECT * FROM unnest($3::uuid[], $4::text[]))"
        f" UNION ALL SELECT 3, tenant_id, NULL, sale, NULL, NULL, NULL FROM {S}.backorders"
        " WHERE (tenant_id, sale) IN (SELECT * FROM unnest($5::uuid[], $6::uuid[]))",
        *columns(locations, 2),
        *columns(skus, 2),
        *columns(sales, 2),
    )
    places: dict[tuple[UUID, str], Place] = {}
    policies: dict[tuple[UUID, str], Policy] = {}
    queued: set[tuple[UUID, UUID]] = set()
    for r in rows:
        if r["kind"] == 1:
            places[(r["tenant_id"], r["code"])] = Place(r["name"], r["address"])
        elif r["kind"] == 2:
            policies[(r["tenant_id"], r["code"])] = Policy.of(*r["policy"])
        else:
            queued.add((r["tenant_id"], r["sale"]))
    return places, policies, queued


async def queued_units(conn: asyncpg.Connection, keys: Iterable[RecordKey]) -> dict[RecordKey, int]:
    """How many units of each SKU wait in each location's backorder queue, for the products
    with a backorder cap. Takes a transaction-scoped lock per key first (in one order), so
    two transactions never both count the queue before either adds to it."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('stock:backorders:' || t::text || ':'"
        " || l || ':' || s, 0)) FROM unnest($1::uuid[], $2::text[], $3::text[]) AS k(t, l, s)"
        " ORDER BY t, l, s",
        *columns(keys, 3),
    )
    rows = await conn.fetch(
        f"SELECT b.tenant_id, b.location_id, ln->>'sku' AS sku,"
        f" sum((ln->>'quantity')::bigint) AS units FROM {S}.backorders b,"
        " jsonb_array_elements(b.lines) ln"
        " WHERE (b.tenant_id, b.location_id, ln->>'sku') IN"
        " (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))"
        " GROUP BY 1, 2, 3",
        *columns(keys, 3),
    )
    return {(r["tenant_id"], r["location_id"], r["sku"]): r["units"] for r in rows}


@dataclass(frozen=True)
class Backorder:
    """A sale waiting for stock: (tenant, sale) is queued once, `seq` orders the queue."""

    tenant_id: UUID
    sale: UUID
    sale_id: str
    location_id: str
    lines: list[dict[str, Any]]  # [{"sku": ..., "quantity": ...}]
    seq: int = 0  # given by the database
    routed: bool = False  # the sale names no location: routed again on each retry
    allow_split: bool = True
    sale_version: int | None = None


async def backorders_of(
    conn: asyncpg.Connection, sales: Iterable[tuple[UUID, UUID]]
) -> dict[tuple[UUID, UUID], Backorder]:
    """The queued entries of these sales (an edited sale's, to take it off its queue)."""
    keys = sorted(set(sales))
    if not keys:
        return {}
    rows = await conn.fetch(
        f"SELECT seq, tenant_id, sale, sale_id, location_id, lines, routed, allow_split,"
        f" sale_version FROM {S}.backorders"
        " WHERE (tenant_id, sale) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        *columns(keys, 2),
    )
    return {(r["tenant_id"], r["sale"]): Backorder(**dict(r)) for r in rows}


async def insert_backorders(conn: asyncpg.Connection, rows: Sequence[Backorder]) -> None:
    if rows:
        await conn.execute(
            f"INSERT INTO {S}.backorders (tenant_id, sale, sale_id, location_id, lines, routed,"
            " allow_split, sale_version) SELECT t, s, si, l, ln::jsonb, ro, sp, sv"
            " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],"
            " $6::bool[], $7::bool[], $8::int[]) AS v(t, s, si, l, ln, ro, sp, sv)"
            " ON CONFLICT DO NOTHING",
            [r.tenant_id for r in rows],
            [r.sale for r in rows],
            [r.sale_id for r in rows],
            [r.location_id for r in rows],
            [orjson.dumps(r.lines).decode() for r in rows],
            [r.routed for r in rows],
            [r.allow_split for r in rows],
            [r.sale_version for r in rows],
        )


async def delete_backorders(conn: asyncpg.Connection, sales: Iterable[tuple[UUID, UUID]]) -> None:
    keys = list(sales)
    if keys:
        await conn.execute(
            f"DELETE FROM {S}.backorders WHERE (tenant_id, sale) IN"
            " (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
            *columns(keys, 2),
        )


async def waiting_backorders(
    conn: asyncpg.Connection, tenant_id: UUID, location_id: str, limit: int
) -> list[Backorder]:
    rows = await conn.fetch(
        f"SELECT seq, tenant_id, sale, sale_id, location_id, lines, routed, allow_split,"
        f" sale_version FROM {S}.backorders"
        " WHERE tenant_id = $1 AND location_id = $2 ORDER BY seq LIMIT $3",
        tenant_id,
        location_id,
        limit,
    )
    return [Backorder(**dict(r)) for r in rows]


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
        " SELECT * FROM unnest($1::uuid[], $2::text[])"
        # a routed sale may be filled from any of its tenant's locations: its queue wakes too
        f" UNION SELECT DISTINCT tenant_id, location_id FROM {S}.backorders"
        " WHERE routed AND tenant_id = ANY($1::uuid[]) ON CONFLICT DO NOTHING",
        *columns(keys, 2),
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


async def wake_locations_with_backorders(
    conn: asyncpg.Connection, tenant_id: UUID, sku: str
) -> None:
    """Ask for a retry of each location whose backorder queue has a sale naming `sku`."""
    rows = await conn.fetch(
        f"SELECT DISTINCT location_id FROM {S}.backorders b WHERE b.tenant_id = $1"
        " AND b.lines @> jsonb_build_array(jsonb_build_object('sku', $2::text))",
        tenant_id,
        sku,
    )
    await request_backorder_retry(conn, [(tenant_id, r["location_id"]) for r in rows])


async def sites_of(
    conn: asyncpg.Connection, tenants: Iterable[UUID]
) -> tuple[dict[UUID, list[Site]], dict[tuple[UUID, str], Place]]:
    """Every location of these tenants, as routing sees them and as reservations name them
    (one round trip; none for no tenant)."""
    tenants = sorted(set(tenants))
    if not tenants:
        return {}, {}
    rows = await conn.fetch(
        f"SELECT tenant_id, location_id, name, address, routing_priority, is_default"
        f" FROM {S}.locations WHERE tenant_id = ANY($1::uuid[])",
        tenants,
    )
    sites: dict[UUID, list[Site]] = {t: [] for t in tenants}
    places = {}
    for r in rows:
        sites[r["tenant_id"]].append(Site(r["location_id"], r["routing_priority"], r["is_default"]))
        places[(r["tenant_id"], r["location_id"])] = Place(r["name"], r["address"])
    return sites, places
