"""Stock level use cases: set, change, count, transfer. Each runs in the caller's transaction,
locks the records it touches in the global order, and applies all of a request or none."""

import uuid
from collections.abc import Callable, Sequence
from uuid import UUID

import asyncpg

from fulfilkit.http.problems import Problem
from stock import store
from stock.changes import save_changes
from stock.domain import (
    LedgerEntry,
    StockRecord,
    StockRuleViolation,
    apply_change,
    set_on_hand,
)
from stock.schemas import LevelUpdateIn, RecordChange, RecordUpdate, TransferIn

Field = str


def _refuse_duplicates(ids: Sequence[UUID]) -> None:
    seen: set[UUID] = set()
    errors = []
    for i, rid in enumerate(ids):
        if rid in seen:
            errors.append({"field": f"/stock_records/{i}/id", "message": "listed twice"})
        seen.add(rid)
    if errors:
        raise Problem("validation", "A stock record is listed twice.", errors=errors)


async def _lock_listed(
    conn: asyncpg.Connection, tenant: UUID, ids: Sequence[UUID]
) -> dict[UUID, StockRecord]:
    _refuse_duplicates(ids)
    records = await store.lock_records_by_id(conn, tenant, ids)
    missing = [
        {"field": f"/stock_records/{i}/id", "message": f"no stock record {rid}"}
        for i, rid in enumerate(ids)
        if rid not in records
    ]
    if missing:
        raise Problem("validation", "Some stock records do not exist.", errors=missing)
    return records


def _apply_all(
    changes: Sequence[tuple[Field, StockRecord, Callable[[StockRecord], LedgerEntry]]],
) -> list[LedgerEntry]:
    """Apply every change or refuse the whole request, naming each record that broke a rule."""
    entries, errors = [], []
    for field, record, change in changes:
        try:
            entries.append(change(record))
        except StockRuleViolation as exc:
            errors.append({"field": field, "message": str(exc), "stock_record_id": str(record.id)})
    if errors:
        raise Problem(
            "conflict",
            "Nothing was changed: the request would leave stock below"
            " zero or below what is reserved.",
            errors=errors,
        )
    return entries


async def update_records(
    conn: asyncpg.Connection,
    tenant: UUID,
    items: Sequence[RecordUpdate],
    if_match: int | None,
    actor: str,
    notes: str | None,
) -> list[UUID]:
    """Set on-hand quantities; stale `compare_quantity`, `version` or If-Match refuse all."""
    if if_match is not None and len(items) != 1:
        raise Problem(
            "validation",
            "If-Match applies to a single record.",
            errors=[
                {
                    "field": "/stock_records",
                    "in": "body",
                    "message": "give `version` per record to update several; If-Match names one",
                }
            ],
        )
    records = await _lock_listed(conn, tenant, [i.id for i in items])
    stale = []
    for i, item in enumerate(items):
        record = records[item.id]
        expected_version = item.version if item.version is not None else if_match
        if item.compare_quantity is not None and item.compare_quantity != record.quantity:
            stale.append(
                {
                    "field": f"/stock_records/{i}/compare_quantity",
                    "message": f"on hand is now {record.quantity}",
                }
            )
        if expected_version is not None and expected_version != record.version:
            stale.append(
                {
                    "field": f"/stock_records/{i}/version",
                    "message": f"version is now {record.version}",
                }
            )
    if stale:
        raise Problem(
            "conflict",
            "Nothing was changed: some records changed since you read them.",
            errors=stale,
        )
    entries = _apply_all(
        [
            (
                f"/stock_records/{i}/quantity",
                records[item.id],
                lambda r, q=item.quantity: set_on_hand(r, q, "audit"),
            )
            for i, item in enumerate(items)
        ]
    )
    await save_changes(conn, list(records.values()), entries, actor, notes=notes)
    return [i.id for i in items]


async def change_records(
    conn: asyncpg.Connection,
    tenant: UUID,
    items: Sequence[RecordChange],
    actor: str,
    notes: str | None,
) -> list[UUID]:
    """Add or subtract on-hand quantities: safe under concurrency, unlike absolute sets."""
    records = await _lock_listed(conn, tenant, [i.id for i in items])
    entries = _apply_all(
        [
            (
                f"/stock_records/{i}/quantity_change",
                records[item.id],
                lambda r, d=item.quantity_change: apply_change(r, "adjustment", d, 0),
            )
            for i, item in enumerate(items)
        ]
    )
    await save_changes(conn, list(records.values()), entries, actor, notes=notes)
    return [i.id for i in items]


async def _lock_or_create(
    conn: asyncpg.Connection,
    tenant: UUID,
    keys: Sequence[tuple[str, str, Field]],
) -> dict[tuple[UUID, str, str], StockRecord]:
    """Lock the records for (location, SKU) pairs, creating empty ones where missing.

    Each key carries the request field that named its location, for the error pointer.
    """
    for location_id, sku, location_field in keys:
        try:
            async with conn.transaction():  # a savepoint, so the lookups below still run
                await store.insert_stock_record(
                    conn, StockRecord(uuid.uuid4(), tenant, location_id, sku, 0, 0, 1)
                )
        except asyncpg.ForeignKeyViolationError:
            errors = []
            if not await store.get_product(conn, tenant, sku):
                errors.append({"field": "/sku", "message": f"no product {sku}"})
            if not await store.get_location(conn, tenant, location_id):
                errors.append({"field": location_field, "message": f"no location {location_id}"})
            raise Problem(
                "validation", "The sku or location does not exist.", errors=errors
            ) from None
    return await store.lock_records(conn, [(tenant, loc, sku) for loc, sku, _ in keys])


async def level_update(
    conn: asyncpg.Connection, tenant: UUID, body: LevelUpdateIn, actor: str
) -> UUID:
    """A warehouse count (`audit` sets), a delivery (`restock` adds) or a `loss` (subtracts)."""
    records = await _lock_or_create(conn, tenant, [(body.location_id, body.sku, "/location_id")])
    record = records[(tenant, body.location_id, body.sku)]
    change: dict[str, Callable[[StockRecord], LedgerEntry]] = {
        "audit": lambda r: set_on_hand(r, body.quantity, "audit"),
        "restock": lambda r: apply_change(r, "restock", body.quantity, 0),
        "loss": lambda r: apply_change(r, "loss", -body.quantity, 0),
    }
    entries = _apply_all([("/quantity", record, change[body.update_type])])
    await save_changes(conn, [record], entries, actor, notes=body.notes)
    return record.id


async def transfer(
    conn: asyncpg.Connection, tenant: UUID, body: TransferIn, actor: str
) -> tuple[str, UUID, UUID]:
    """Move units between two locations in one transaction: both ledger rows or neither."""
    if body.from_location_id == body.to_location_id:
        raise Problem(
            "validation",
            "A transfer needs two different locations.",
            errors=[{"field": "/to_location_id", "message": "same as from_location_id"}],
        )
    if not await store.record_exists(conn, tenant, body.from_location_id, body.sku):
        raise Problem("conflict", f"There is no stock of {body.sku} at {body.from_location_id}.")
    records = await _lock_or_create(
        conn,
        tenant,
        [
            (body.from_location_id, body.sku, "/from_location_id"),
            (body.to_location_id, body.sku, "/to_location_id"),
        ],
    )
    reference = f"transfer:{uuid.uuid4()}"
    source = records[(tenant, body.from_location_id, body.sku)]
    destination = records[(tenant, body.to_location_id, body.sku)]
    entries = _apply_all(
        [
            (
                "/quantity",
                source,
                lambda r: apply_change(r, "transfer", -body.quantity, 0, reference),
            ),
            (
                "/quantity",
                destination,
                lambda r: apply_change(r, "transfer", body.quantity, 0, reference),
            ),
        ]
    )
    await save_changes(conn, [source, destination], entries, actor, notes=body.notes)
    return reference, source.id, destination.id
