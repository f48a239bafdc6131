"""Products and locations."""

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg

from stock.bundles import Components, components_of
from stock.domain import Location, Product
from stock.store._sql import S, columns

PRODUCT_FIELDS = (
    "sku, name, ean, unit_type, min_level, is_bulky, version, created_at, updated_at,"
    " backorders, out_of_stock_threshold, preorder, infinite, components, assembled"
)
LOCATION_FIELDS = (
    "location_id, name, address, version, created_at, is_default, routing_priority, updated_at"
)


def _product(row: asyncpg.Record | None) -> Product | None:
    return Product(**dict(row)) if row else None


def _location(row: asyncpg.Record | None) -> Location | None:
    return Location(**dict(row)) if row else None


async def insert_product(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    sku: str,
    name: str,
    ean: str | None,
    unit_type: str,
    min_level: int,
    is_bulky: bool,
    policies: dict[str, Any] | None = None,
) -> Product | None:
    """The new product, or None when the tenant has one with this SKU already. `policies`
    holds those of `backorders`, `out_of_stock_threshold`, `preorder` and `infinite` given,
    and a bundle's `components` and `assembled`."""
    policy = {"backorders": "allow", "out_of_stock_threshold": 0, "preorder": None}
    policy |= {"infinite": False, "components": None, "assembled": False} | (policies or {})
    row = await conn.fetchrow(
        f"INSERT INTO {S}.products (tenant_id, sku, name, ean, unit_type, min_level, is_bulky,"
        " backorders, out_of_stock_threshold, preorder, infinite, components, assembled)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT DO NOTHING"
        f" RETURNING {PRODUCT_FIELDS}",
        tenant_id,
        sku,
        name,
        ean,
        unit_type,
        min_level,
        is_bulky,
        policy["backorders"],
        policy["out_of_stock_threshold"],
        policy["preorder"],
        policy["infinite"],
        policy["components"],
        policy["assembled"],
    )
    return _product(row)


async def get_product(conn: asyncpg.Connection, tenant_id: UUID, sku: str) -> Product | None:
    row = await conn.fetchrow(
        f"SELECT {PRODUCT_FIELDS} FROM {S}.products WHERE tenant_id = $1 AND sku = $2",
        tenant_id,
        sku,
    )
    return _product(row)


async def list_products(
    conn: asyncpg.Connection, tenant_id: UUID, limit: int, offset: int
) -> tuple[list[Product], int]:
    rows, total = await _page(conn, "products", PRODUCT_FIELDS, tenant_id, "sku", limit, offset)
    return [Product(**dict(r)) for r in rows], total


async def update_product(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    sku: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Product | None:
    row = await _update(
        conn, "products", "sku", PRODUCT_FIELDS, tenant_id, sku, changes, expected_version
    )
    return _product(row)


async def insert_location(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    location_id: str,
    name: str,
    address: dict[str, Any] | None,
    is_default: bool = False,
    routing_priority: int = 0,
) -> Location | None:
    """The new location, or None when the tenant has one with this id already. A new
    default needs the old one unset first (`unset_default`, same transaction)."""
    row = await conn.fetchrow(
        f"INSERT INTO {S}.locations (tenant_id, location_id, name, address, is_default,"
        f" routing_priority) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
        f" RETURNING {LOCATION_FIELDS}",
        tenant_id,
        location_id,
        name,
        address,
        is_default,
        routing_priority,
    )
    return _location(row)


async def unset_default(conn: asyncpg.Connection, tenant_id: UUID, location_id: str) -> None:
    """Make no location but `location_id` the tenant's default (a new version of the one
    that was), for the caller to make `location_id` the default in the same transaction.
    A transaction-scoped lock per tenant makes two such changes take turns."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock("
        "hashtextextended('stock:default-location:' || $1::uuid::text, 0))",
        tenant_id,
    )
    await conn.execute(
        f"UPDATE {S}.locations SET is_default = false, version = version + 1, updated_at = now()"
        " WHERE tenant_id = $1 AND is_default AND location_id <> $2",
        tenant_id,
        location_id,
    )


async def get_location(
    conn: asyncpg.Connection, tenant_id: UUID, location_id: str
) -> Location | None:
    row = await conn.fetchrow(
        f"SELECT {LOCATION_FIELDS} FROM {S}.locations WHERE tenant_id = $1 AND location_id = $2",
        tenant_id,
        location_id,
    )
    return _location(row)


async def list_locations(
    conn: asyncpg.Connection, tenant_id: UUID, limit: int, offset: int
) -> tuple[list[Location], int]:
    rows, total = await _page(
        conn, "locations", LOCATION_FIELDS, tenant_id, "location_id", limit, offset
    )
    return [Location(**dict(r)) for r in rows], total


async def update_location(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    location_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Location | None:
    row = await _update(
        conn,
        "locations",
        "location_id",
        LOCATION_FIELDS,
        tenant_id,
        location_id,
        changes,
        expected_version,
    )
    return _location(row)


async def known_skus(
    conn: asyncpg.Connection, keys: Iterable[tuple[UUID, str]]
) -> set[tuple[UUID, str]]:
    """Which (tenant, SKU) pairs name a product, in one round trip."""
    keys = list(keys)
    rows = await conn.fetch(
        f"SELECT tenant_id, sku FROM {S}.products WHERE (tenant_id, sku) IN"
        " (SELECT * FROM unnest($1::uuid[], $2::text[]))",
        *columns(keys, 2),
    )
    return {(r["tenant_id"], r["sku"]) for r in rows}


async def bundle_definitions(
    conn: asyncpg.Connection, keys: Iterable[tuple[UUID, str]]
) -> dict[UUID, dict[str, Components]]:
    """Per tenant, the components of the bundles among these SKUs that are not assembled,
    and of such bundles among their components in turn (one round trip; nothing for SKUs
    that are no such bundle)."""
    keys = list(keys)
    if not keys:
        return {}
    rows = await conn.fetch(
        f"WITH RECURSIVE b(tenant_id, sku, components) AS (SELECT tenant_id, sku, components"
        f" FROM {S}.products WHERE (tenant_id, sku) IN"
        " (SELECT * FROM unnest($1::uuid[], $2::text[]))"
        " AND components IS NOT NULL AND NOT assembled"
        " UNION SELECT p.tenant_id, p.sku, p.components FROM b"
        f" CROSS JOIN LATERAL jsonb_array_elements(b.components) c JOIN {S}.products p"
        " ON p.tenant_id = b.tenant_id AND p.sku = c->>'sku'"
        " WHERE p.components IS NOT NULL AND NOT p.assembled)"
        " SELECT tenant_id, sku, components FROM b",
        *columns(keys, 2),
    )
    found: dict[UUID, dict[str, Components]] = {}
    for r in rows:
        found.setdefault(r["tenant_id"], {})[r["sku"]] = components_of(r["components"]) or ()
    return found


async def bundles_of_tenant(conn: asyncpg.Connection, tenant_id: UUID) -> dict[str, Components]:
    """Every bundle of the tenant with its components, assembled or not (to refuse a
    cycle)."""
    rows = await conn.fetch(
        f"SELECT sku, components FROM {S}.products WHERE tenant_id = $1 AND components IS NOT NULL",
        tenant_id,
    )
    return {r["sku"]: components_of(r["components"]) or () for r in rows}


async def lock_bundles(conn: asyncpg.Connection, tenant_id: UUID) -> None:
    """A transaction-scoped lock per tenant, so two changes of components take turns (two
    bundles made each other's component at once would otherwise form a cycle)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('stock:bundles:' || $1::uuid::text, 0))",
        tenant_id,
    )


async def _update(
    conn: asyncpg.Connection,
    table: str,
    key_column: str,
    fields: str,
    tenant_id: UUID,
    key: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> asyncpg.Record | None:
    """Partial update of a catalogue row; None when missing or not at `expected_version`.

    An empty change set changes nothing (the version stays) but still checks the version.
    """
    if not changes:
        return await conn.fetchrow(
            f"SELECT {fields} FROM {S}.{table} WHERE tenant_id = $1 AND {key_column} = $2"
            " AND ($3::int IS NULL OR version = $3)",
            tenant_id,
            key,
            expected_version,
        )
    names = list(changes)
    assignments = "".join(f"{c} = ${i + 4}, " for i, c in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE {S}.{table} SET {assignments}version = version + 1, updated_at = now()"
        f" WHERE tenant_id = $1 AND {key_column} = $2 AND ($3::int IS NULL OR version = $3)"
        f" RETURNING {fields}",
        tenant_id,
        key,
        expected_version,
        *(changes[c] for c in names),
    )


async def _page(
    conn: asyncpg.Connection,
    table: str,
    fields: str,
    tenant_id: UUID,
    order: str,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.{table} WHERE tenant_id = $1", tenant_id)
    rows = await conn.fetch(
        f"SELECT {fields} FROM {S}.{table} WHERE tenant_id = $1 ORDER BY {order}"
        " LIMIT $2 OFFSET $3",
        tenant_id,
        limit,
        offset,
    )
    return rows, total
