"""Stock records and their levels: create and read records, update levels (a count sets, a
restock adds, a loss subtracts), change them by a difference, transfer between locations,
read the ledger.

Every write locks the records it touches in the global order and applies all of a request
or none. Updates, changes and transfers run in their caller's transaction, which commits
the Idempotency-Key's answer with them: none is keyed by its content, so a retry must not
apply it twice. A new record is keyed by its location and SKU, so it owns its transaction.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from fulfilkit.db import in_transaction
from fulfilkit.errors import Conflict, Duplicated, Invalid, NotFound
from stock import store
from stock.domain import (
    LedgerEntry,
    Movement,
    RecordKey,
    StockRecord,
    StockRuleViolation,
    apply_change,
    opening_entry,
    set_on_hand,
)
from stock.usecases._changes import save_changes

UpdateKind = Literal["audit", "restock", "loss"]
# What a count's quantity stands for: on hand, or available (on hand less the reservations).
QuantityBasis = Literal["on_hand", "available"]


@dataclass(frozen=True)
class LevelUpdate:
    """One stock level to update: a count (`audit`) sets on hand to `quantity`, a `restock`
    adds it, a `loss` subtracts it.

    The record is named by `record_id`, or by `location_id` and `sku` (and then created empty
    when the location has none for the SKU yet). `compare_quantity` and `version`, when
    given, must be the record's current ones. With `basis` "available", a count's
    `quantity` (and `compare_quantity`) is what is available: on hand is set to it plus the
    record's open reservations, as they stand under the record's lock. `at` is the JSON
    pointer of this item in the request ('' for the whole body), so that a refusal names the
    field at fault.
    """

    quantity: int
    kind: UpdateKind = "audit"
    record_id: UUID | None = None
    location_id: str | None = None
    sku: str | None = None
    compare_quantity: int | None = None
    version: int | None = None
    basis: QuantityBasis = "on_hand"
    at: str = ""

    def counted(self, record: StockRecord) -> int:
        """The record's quantity on this update's basis."""
        return record.available if self.basis == "available" else record.quantity


@dataclass(frozen=True)
class LevelChange:
    """Add `quantity_change` (negative: subtract) to a record's on-hand quantity."""

    record_id: UUID
    quantity_change: int
    at: str = ""


@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    source: StockRecord
    destination: StockRecord


async def create_stock_record(
    pool: asyncpg.Pool, tenant: UUID, location_id: str, sku: str, quantity: int, actor: str
) -> StockRecord:
    """Start stocking a SKU at a location, with `quantity` on hand (an opening count)."""
    record = StockRecord(uuid.uuid4(), tenant, location_id, sku, quantity, 0, 1)

    async def create(conn: asyncpg.Connection) -> StockRecord:
        try:
            created = await store.records.insert_stock_record(conn, record)
        except asyncpg.ForeignKeyViolationError:
            raise Invalid(
                "The sku or location does not exist.",
                errors=[
                    {"field": "/sku", "message": "must name an existing product"},
                    {"field": "/location_id", "message": "must name an existing location"},
                ],
            ) from None
        if not created:
            raise Duplicated(f"A stock record for {sku!r} at {location_id!r} already exists.")
        product = await store.catalogue.get_product(conn, tenant, sku)
        record.min_level = product.min_level if product else 0
        record.threshold = product.out_of_stock_threshold if product else 0
        record.infinite = product.infinite if product else False
        await save_changes(conn, [record], [opening_entry(record)], actor)
        return (await _read(conn, tenant, [record.id]))[0]

    return await in_transaction(pool, create)


async def list_stock_records(
    pool: asyncpg.Pool,
    tenant: UUID,
    *,
    skus: Sequence[str] = (),
    locations: Sequence[str] = (),
    limit: int,
    offset: int,
) -> tuple[list[StockRecord], int]:
    """A page of records by location and SKU (only of these SKUs and locations when given),
    and how many there are."""
    async with pool.acquire() as conn:
        return await store.records.list_records(conn, tenant, skus, locations, limit, offset)


async def get_stock_record(pool: asyncpg.Pool, tenant: UUID, record_id: UUID) -> StockRecord:
    async with pool.acquire() as conn:
        found = await store.records.get_records(conn, tenant, [record_id])
    if record_id not in found:
        raise NotFound(f"No stock record {record_id}.")
    return found[record_id]


async def update_stock(
    conn: asyncpg.Connection,
    tenant: UUID,
    updates: Sequence[LevelUpdate],
    actor: str,
    notes: str | None = None,
) -> list[StockRecord]:
    """Update stock levels, all or none; a stale `compare_quantity` or `version` refuses all.

    Returns the records as they are now, in the order of `updates`.
    """
    records = await _lock(conn, tenant, updates)
    stale = []
    for update, record in zip(updates, records, strict=True):
        counted = update.counted(record)
        if update.compare_quantity is not None and update.compare_quantity != counted:
            basis = "available" if update.basis == "available" else "on hand"
            stale.append(
                {
                    "field": f"{update.at}/compare_quantity",
                    "message": f"{basis} is now {counted}",
                }
            )
        if update.version is not None and update.version != record.version:
            stale.append(
                {"field": f"{update.at}/version", "message": f"version is now {record.version}"}
            )
    if stale:
        raise Conflict(
            "Nothing was changed: some records changed since you read them.", errors=stale
        )
    entries = _apply_all(
        [
            (f"{u.at}/quantity", record, lambda r, u=u: _level_change(r, u))
            for u, record in zip(updates, records, strict=True)
        ]
    )
    unique = list({r.id: r for r in records}.values())  # two updates may name one record
    await save_changes(conn, unique, entries, actor, notes=notes)
    return await _read(conn, tenant, [r.id for r in records])


async def change_stock(
    conn: asyncpg.Connection,
    tenant: UUID,
    changes: Sequence[LevelChange],
    actor: str,
    notes: str | None = None,
) -> list[StockRecord]:
    """Add to or subtract from on-hand quantities, all or none: safe under concurrency,
    unlike a count. Returns the records as they are now, in the order of `changes`."""
    locked = await _lock_listed(conn, tenant, [(c.record_id, c.at) for c in changes])
    entries = _apply_all(
        [
            (
                f"{c.at}/quantity_change",
                locked[c.record_id],
                lambda r, d=c.quantity_change: apply_change(r, "adjustment", d, 0),
            )
            for c in changes
        ]
    )
    await save_changes(conn, list(locked.values()), entries, actor, notes=notes)
    return await _read(conn, tenant, [c.record_id for c in changes])


async def transfer_stock(
    conn: asyncpg.Connection,
    tenant: UUID,
    sku: str,
    from_location_id: str,
    to_location_id: str,
    quantity: int,
    actor: str,
    notes: str | None = None,
) -> Transfer:
    """Move units of a SKU between two locations: both ledger rows or neither."""
    if from_location_id == to_location_id:
        raise Invalid(
            "A transfer needs two different locations.",
            errors=[{"field": "/to_location_id", "message": "same as from_location_id"}],
        )
    if not await store.records.record_exists(conn, tenant, from_location_id, sku):
        raise Conflict(f"There is no stock of {sku} at {from_location_id}.")
    records = await _lock_or_create(
        conn,
        tenant,
        [
            (from_location_id, sku, "/from_location_id", "/sku"),
            (to_location_id, sku, "/to_location_id", "/sku"),
        ],
    )
    reference = f"transfer:{uuid.uuid4()}"
    source = records[(tenant, from_location_id, sku)]
    destination = records[(tenant, to_location_id, sku)]
    entries = _apply_all(
        [
            ("/quantity", source, lambda r: apply_change(r, "transfer", -quantity, 0, reference)),
            (
                "/quantity",
                destination,
                lambda r: apply_change(r, "transfer", quantity, 0, reference),
            ),
        ]
    )
    await save_changes(conn, [source, destination], entries, actor, notes=notes)
    out = await _read(conn, tenant, [source.id, destination.id])
    return Transfer(reference, out[0], out[1])


async def list_movements(
    pool: asyncpg.Pool,
    tenant: UUID,
    *,
    skus: Sequence[str] = (),
    locations: Sequence[str] = (),
    reasons: Sequence[str] = (),
    reference: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    limit: int,
    offset: int,
) -> tuple[list[Movement], int]:
    """A page of the append-only ledger, oldest first, and how many rows match."""
    async with pool.acquire() as conn:
        return await store.records.list_movements(
            conn,
            tenant,
            skus=skus,
            locations=locations,
            reasons=reasons,
            reference=reference,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            offset=offset,
        )


def _level_change(record: StockRecord, update: LevelUpdate) -> LedgerEntry:
    if update.kind == "restock":
        return apply_change(record, "restock", update.quantity, 0)
    if update.kind == "loss":
        return apply_change(record, "loss", -update.quantity, 0)
    if update.basis == "available":
        return set_on_hand(record, update.quantity + record.reserved, "audit")
    return set_on_hand(record, update.quantity, "audit")


async def _read(conn: asyncpg.Connection, tenant: UUID, ids: Sequence[UUID]) -> list[StockRecord]:
    """The records as saved (with their new `updated_at`), in the order of `ids`."""
    found = await store.records.get_records(conn, tenant, ids)
    return [found[i] for i in ids]


async def _lock(
    conn: asyncpg.Connection, tenant: UUID, updates: Sequence[LevelUpdate]
) -> list[StockRecord]:
    """The records the updates name, locked, in the order of `updates`."""
    by_id = await _lock_listed(
        conn, tenant, [(u.record_id, u.at) for u in updates if u.record_id is not None]
    )
    by_key = await _lock_or_create(
        conn,
        tenant,
        [
            (u.location_id or "", u.sku or "", f"{u.at}/location_id", f"{u.at}/sku")
            for u in updates
            if u.record_id is None
        ],
    )
    return [
        by_id[u.record_id] if u.record_id is not None else by_key[(tenant, u.location_id, u.sku)]  # type: ignore[index]
        for u in updates
    ]


async def _lock_listed(
    conn: asyncpg.Connection, tenant: UUID, listed: Sequence[tuple[UUID, str]]
) -> dict[UUID, StockRecord]:
    """Lock records named by id, each with its pointer; refuse any listed twice or missing."""
    if not listed:
        return {}
    seen: set[UUID] = set()
    twice = []
    for record_id, at in listed:
        if record_id in seen:
            twice.append({"field": f"{at}/id", "message": "listed twice"})
        seen.add(record_id)
    if twice:
        raise Invalid("A stock record is listed twice.", errors=twice)
    records = await store.records.lock_records_by_id(conn, tenant, seen)
    missing = [
        {"field": f"{at}/id", "message": f"no stock record {record_id}"}
        for record_id, at in listed
        if record_id not in records
    ]
    if missing:
        raise Invalid("Some stock records do not exist.", errors=missing)
    return records


async def _lock_or_create(
    conn: asyncpg.Connection, tenant: UUID, keys: Sequence[tuple[str, str, str, str]]
) -> dict[RecordKey, StockRecord]:
    """Lock the records of (location, SKU) pairs, creating empty ones where missing.

    Each pair carries the pointers of the fields that named its location and SKU.
    """
    if not keys:
        return {}
    for location_id, sku, location_field, sku_field in keys:
        try:
            async with conn.transaction():  # a savepoint, so the lookups below still run
                await store.records.insert_stock_record(
                    conn, StockRecord(uuid.uuid4(), tenant, location_id, sku, 0, 0, 1)
                )
        except asyncpg.ForeignKeyViolationError:
            errors = []
            if not await store.catalogue.get_product(conn, tenant, sku):
                errors.append({"field": sku_field, "message": f"no product {sku}"})
            if not await store.catalogue.get_location(conn, tenant, location_id):
                errors.append({"field": location_field, "message": f"no location {location_id}"})
            raise Invalid("The sku or location does not exist.", errors=errors) from None
    return await store.records.lock_records(conn, [(tenant, loc, sku) for loc, sku, _, _ in keys])


def _apply_all(
    changes: Sequence[tuple[str, StockRecord, Callable[[StockRecord], LedgerEntry]]],
) -> list[LedgerEntry]:
    """Apply every change or refuse the whole request, naming each record that broke a rule."""
    entries, errors = [], []
    for field, record, change in changes:
        try:
            entries.append(change(record))
        except StockRuleViolation as exc:
            errors.append({"field": field, "message": str(exc), "stock_record_id": str(record.id)})
    if errors:
        raise Conflict(
            "Nothing was changed: the request would leave stock below"
            " zero or below what is reserved.",
            errors=errors,
        )
    return entries
