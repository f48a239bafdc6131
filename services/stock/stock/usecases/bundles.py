"""Bundles: builds of assembled bundles, and what a bundle that is not assembled can sell,
derived from its components (`stock.bundles`)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from fulfilkit.errors import Invalid
from stock import store
from stock.bundles import components_of, derived_available, expand, per_bundle
from stock.domain import StockRecord, apply_change
from stock.usecases._changes import save_changes
from stock.usecases.levels import _apply_all, _lock_or_create

MAX_DERIVED_LOCATIONS = 1000  # locations a bundle's derived levels are read at


@dataclass(frozen=True)
class Build:
    """A build (or, negative, a take-apart) of an assembled bundle at a location: the
    bundle's record and its components' after it, under one ledger reference."""

    build_id: str
    sku: str
    location_id: str
    quantity: int
    bundle: StockRecord
    components: list[StockRecord]


@dataclass(frozen=True)
class DerivedLevel:
    """What a bundle that is not assembled can sell at a location: as many as its scarcest
    component allows (never a stock record of its own)."""

    location_id: str
    sku: str
    available: int


async def build_bundle(
    conn: asyncpg.Connection,
    tenant: UUID,
    sku: str,
    location_id: str,
    quantity: int,
    actor: str,
    notes: str | None = None,
) -> Build:
    """Turn components into units of an assembled bundle at a location (a negative quantity
    takes units apart into their components): every ledger row or none, all with reason
    `build` and the build's id as reference. Refused (409, a pointer per short record) when a
    component, or the bundle taken apart, is short; 422 for a product that is not an
    assembled bundle or a location that does not exist."""
    product = await store.catalogue.get_product(conn, tenant, sku)
    parts = components_of(product.components) if product else None
    if product is None or not parts or not product.assembled:
        message = "no product with this sku" if product is None else "not an assembled bundle"
        raise Invalid(
            "Only an assembled bundle is built.", errors=[{"field": "/sku", "message": message}]
        )
    # a component that is itself a bundle not assembled is built from its own components
    definitions = (
        await store.catalogue.bundle_definitions(conn, [(tenant, c) for c, _ in parts])
    ).get(tenant, {})
    need: dict[str, int] = {}
    for component, each in expand(parts, definitions):
        need[component] = need.get(component, 0) + each
    keys = [(location_id, sku, "/location_id", "/sku")]
    keys += [(location_id, c, "/location_id", "/sku") for c in sorted(need)]
    records = await _lock_or_create(conn, tenant, keys)
    reference = f"build:{uuid.uuid4()}"
    bundle = records[(tenant, location_id, sku)]
    parts_records = [records[(tenant, location_id, c)] for c in sorted(need)]
    changes = [
        (
            f"/components/{c}",
            r,
            lambda r, n=need[c]: apply_change(r, "build", -quantity * n, 0, reference),
        )
        for c, r in zip(sorted(need), parts_records, strict=True)
        if not r.infinite
    ]
    changes.append(
        ("/quantity", bundle, lambda r: apply_change(r, "build", quantity, 0, reference))
    )
    entries = _apply_all(changes)
    await save_changes(conn, list(records.values()), entries, actor, notes=notes)
    saved = await store.records.get_records(conn, tenant, [r.id for r in records.values()])
    return Build(
        reference,
        sku,
        location_id,
        quantity,
        saved[bundle.id],
        [saved[r.id] for r in parts_records],
    )


async def derived_levels(
    conn: asyncpg.Connection, tenant: UUID, skus: Sequence[str], locations: Sequence[str] = ()
) -> list[DerivedLevel]:
    """For each of `skus` that is a bundle not assembled, what it can sell at each location
    holding a record of any of its components (of `locations`, when given), by location
    then SKU; nothing for other SKUs."""
    definitions = (
        await store.catalogue.bundle_definitions(conn, [(tenant, s) for s in set(skus)])
    ).get(tenant, {})
    bundles = sorted(s for s in set(skus) if s in definitions)
    if not bundles:
        return []
    needs = {b: per_bundle(b, definitions) for b in bundles}
    wanted = sorted({c for need in needs.values() for c in need})
    records, _ = await store.records.list_records(
        conn, tenant, wanted, list(locations), MAX_DERIVED_LOCATIONS * len(wanted), 0
    )
    at: dict[str, dict[str, StockRecord]] = {}
    for r in records:
        at.setdefault(r.location_id, {})[r.sku] = r
    levels = []
    for location in sorted(at):
        there = at[location]
        for b in bundles:
            if not any(c in there for c in needs[b]):
                continue
            # an infinite component never limits a bundle
            need = {c: n for c, n in needs[b].items() if not (c in there and there[c].infinite)}
            sellable = {c: r.sellable for c, r in there.items()}
            levels.append(DerivedLevel(location, b, derived_available(need, sellable)))
    return levels


async def list_records_and_derived(
    pool: asyncpg.Pool,
    tenant: UUID,
    skus: Sequence[str],
    locations: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[list[StockRecord], list[DerivedLevel], int]:
    """A page of stock records (by location and SKU) followed by the derived rows of the
    bundles among `skus` that are not assembled (by location and SKU), and how many rows
    there are in all, read in one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        records, total = await store.records.list_records(
            conn, tenant, skus, locations, limit, offset
        )
        derived = await derived_levels(conn, tenant, skus, locations) if skus else []
    start = max(0, offset - total)
    room = max(0, limit - len(records))
    return records, derived[start : start + room], total + len(derived)
