"""Products and locations: the SKUs a tenant stocks and the places it stocks them."""

from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit.errors import Conflict, Duplicated, Invalid, NotFound
from stock import events, store
from stock.bundles import component_errors, components_of
from stock.domain import Location, Product, StockRecord
from stock.usecases.bundles import DerivedLevel, derived_levels

POLICY_FIELDS = frozenset({"backorders", "out_of_stock_threshold", "preorder", "infinite"})
# policy changes that may let a waiting sale fit: a lower threshold, or infinite
FREES_STOCK = frozenset({"out_of_stock_threshold", "infinite"})
BUNDLE_FIELDS = frozenset({"components", "assembled"})
PRODUCT_CHANGES = (
    frozenset({"name", "ean", "unit_type", "min_level", "is_bulky"}) | POLICY_FIELDS | BUNDLE_FIELDS
)
LOCATION_CHANGES = frozenset({"name", "address", "is_default", "routing_priority"})


async def create_product(
    pool: asyncpg.Pool,
    tenant: UUID,
    sku: str,
    name: str,
    *,
    ean: str | None = None,
    unit_type: str = "unit",
    min_level: int = 0,
    is_bulky: bool = False,
    **policies: Any,
) -> Product:
    """A new SKU in the tenant's catalogue, announced with `product.created` in the same
    transaction (orders keeps its copy of the catalogue from these events). `policies` are
    the product's stock policies (`POLICY_FIELDS`) given, and a bundle's `components` and
    `assembled`; the others take their defaults."""
    _only(policies, POLICY_FIELDS | BUNDLE_FIELDS)
    async with pool.acquire() as conn, conn.transaction():
        if policies.get("components") is not None:
            await _check_components(conn, tenant, sku, policies["components"])
        product = await store.catalogue.insert_product(
            conn, tenant, sku, name, ean, unit_type, min_level, is_bulky, policies
        )
        if product is not None:
            await store.outbox.add_events(conn, [events.product_created(tenant, product)])
    if product is None:
        raise Duplicated(f"A product with sku {sku!r} already exists.")
    return product


async def list_products(
    pool: asyncpg.Pool, tenant: UUID, limit: int, offset: int
) -> tuple[list[Product], int]:
    """A page of products by SKU, and how many there are."""
    async with pool.acquire() as conn:
        return await store.catalogue.list_products(conn, tenant, limit, offset)


async def get_product(pool: asyncpg.Pool, tenant: UUID, sku: str) -> Product:
    async with pool.acquire() as conn:
        product = await store.catalogue.get_product(conn, tenant, sku)
    if product is None:
        raise NotFound(f"No product with sku {sku!r}.")
    return product


MAX_LOCATIONS_SHOWN = 1000  # per-location levels on a product's view


async def get_product_with_stock(
    pool: asyncpg.Pool, tenant: UUID, sku: str
) -> tuple[Product, list[StockRecord], list[DerivedLevel]]:
    """The product and its stock record at each location (by location id, the first
    `MAX_LOCATIONS_SHOWN`), read in one snapshot; for a bundle that is not assembled, what
    its components let it sell at each location instead (derived, no record of its own)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        product = await store.catalogue.get_product(conn, tenant, sku)
        if product is None:
            raise NotFound(f"No product with sku {sku!r}.")
        if product.components is not None and not product.assembled:
            derived = await derived_levels(conn, tenant, [sku])
            return product, [], derived[:MAX_LOCATIONS_SHOWN]
        records, _ = await store.records.list_records(
            conn, tenant, [sku], [], MAX_LOCATIONS_SHOWN, 0
        )
    return product, records, []


async def update_product(
    pool: asyncpg.Pool,
    tenant: UUID,
    sku: str,
    changes: dict[str, Any],
    expected_version: int | None = None,
) -> Product:
    """Change the given fields (of `PRODUCT_CHANGES`); none given changes nothing."""
    _only(changes, PRODUCT_CHANGES)
    async with pool.acquire() as conn, conn.transaction():
        if changes.keys() & BUNDLE_FIELDS:
            await _check_bundle_change(conn, tenant, sku, changes)
        product = await store.catalogue.update_product(conn, tenant, sku, changes, expected_version)
        if product is None and await store.catalogue.get_product(conn, tenant, sku) is None:
            raise NotFound(f"No product with sku {sku!r}.")
        if product is not None and changes.keys() & FREES_STOCK:
            # sales waiting for this product may fit now: retry its locations' queues
            await store.reservations.wake_locations_with_backorders(conn, tenant, sku)
    if product is None:
        raise Conflict("The product has changed since the version in If-Match.")
    return product


async def create_location(
    pool: asyncpg.Pool,
    tenant: UUID,
    location_id: str,
    name: str,
    address: dict[str, Any] | None = None,
    is_default: bool = False,
    routing_priority: int = 0,
) -> Location:
    """A new location; a new default unsets the tenant's other one in the same transaction."""
    async with pool.acquire() as conn, conn.transaction():
        if is_default:
            await store.catalogue.unset_default(conn, tenant, location_id)
        location = await store.catalogue.insert_location(
            conn, tenant, location_id, name, address, is_default, routing_priority
        )
        if location is None:
            raise Duplicated(f"Location {location_id!r} already exists.")
    return location


async def list_locations(
    pool: asyncpg.Pool, tenant: UUID, limit: int, offset: int
) -> tuple[list[Location], int]:
    """A page of locations by id, and how many there are."""
    async with pool.acquire() as conn:
        return await store.catalogue.list_locations(conn, tenant, limit, offset)


async def get_location(pool: asyncpg.Pool, tenant: UUID, location_id: str) -> Location:
    async with pool.acquire() as conn:
        location = await store.catalogue.get_location(conn, tenant, location_id)
    if location is None:
        raise NotFound(f"No location {location_id!r}.")
    return location


async def update_location(
    pool: asyncpg.Pool,
    tenant: UUID,
    location_id: str,
    changes: dict[str, Any],
    expected_version: int | None = None,
) -> Location:
    """Change the given fields (of `LOCATION_CHANGES`); none given changes nothing."""
    _only(changes, LOCATION_CHANGES)
    async with pool.acquire() as conn, conn.transaction():
        if changes.get("is_default"):  # the tenant's other default stops being one
            await store.catalogue.unset_default(conn, tenant, location_id)
        location = await store.catalogue.update_location(
            conn, tenant, location_id, changes, expected_version
        )
        if location is None:  # raised inside, so the other default stays as it was
            if await store.catalogue.get_location(conn, tenant, location_id) is None:
                raise NotFound(f"No location {location_id!r}.")
            raise Conflict("The location has changed since the version in If-Match.")
    return location


async def _check_components(
    conn: asyncpg.Connection, tenant: UUID, sku: str, components: list[dict[str, Any]]
) -> None:
    """Refuse (422, a pointer per bad component) components that name no product, the
    product itself, or lead back to it; takes the tenant's bundle lock first, so two
    changes of components never form a cycle between them."""
    await store.catalogue.lock_bundles(conn, tenant)
    pairs = components_of(components) or ()
    known = await store.catalogue.known_skus(conn, [(tenant, c) for c, _ in pairs])
    bundles = await store.catalogue.bundles_of_tenant(conn, tenant)
    errors = component_errors(sku, pairs, {c for _, c in known}, bundles)
    if errors:
        raise Invalid(
            "Some components cannot be part of this bundle.",
            errors=[{"field": f"/components/{i}/sku", "message": m} for i, m in errors],
        )


async def _check_bundle_change(
    conn: asyncpg.Connection, tenant: UUID, sku: str, changes: dict[str, Any]
) -> None:
    """A product's components or `assembled` change only while it has no stock and no
    units reserved at any location (409 otherwise)."""
    if await store.records.has_stock(conn, tenant, sku):
        raise Conflict(
            "A product's components or assembled change only while it has no stock and"
            " nothing reserved."
        )
    if changes.get("components") is not None:
        await _check_components(conn, tenant, sku, changes["components"])


def _only(changes: dict[str, Any], allowed: frozenset[str]) -> None:
    # the names become SQL column names: never anything but these
    if unknown := set(changes) - allowed:
        raise ValueError(f"not a changeable field: {sorted(unknown)}")
