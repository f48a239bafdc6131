"""Inbound orders: deliveries expected from a supplier at a location (`stock.inbound` has
the rules). Create, read, change and cancel them; receive against them, which raises on-hand
in the transaction that records the receipt, its ledger rows (reason `receipt`, reference
the receipt's id) and the order's `received`, waking the location's backorder queue.

Every change commits with its events (`inbound_order.created`, `.status_changed`,
`.received`) in the outbox.
"""

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit.errors import Conflict, Duplicated, Invalid, NotFound
from stock import events, store
from stock.domain import StockRecord, apply_change
from stock.inbound import (
    EXPECTED,
    InboundLine,
    InboundOrder,
    InboundRuleViolation,
    ReceiptInvalid,
    ReceiptLine,
    check_editable,
    check_new_status,
)
from stock.inbound import cancel as cancel_order
from stock.inbound import close as close_order
from stock.inbound import receive as receive_lines
from stock.usecases._changes import save_changes
from stock.usecases.levels import _apply_all, _lock_or_create
from stock.usecases.reservations import announce_waiting

# the fields a PATCH may change (lines replace the order's lines)
CHANGEABLE = frozenset(
    {
        "supplier",
        "location_id",
        "expected_at",
        "urgent",
        "instructions",
        "properties",
        "status",
        "lines",
    }
)


async def create_inbound_order(
    pool: asyncpg.Pool,
    tenant: UUID,
    *,
    reference: str,
    lines: Sequence[tuple[str, int]],
    supplier: str | None = None,
    location_id: str | None = None,
    expected_at: datetime | None = None,
    urgent: bool = False,
    instructions: str | None = None,
    properties: dict[str, Any] | None = None,
    status: str = "open",
) -> InboundOrder:
    """A new inbound order at `location_id`, or the tenant's default location when None."""
    check_new_status_or_invalid(status)
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        where = await _location(conn, tenant, location_id)
        await _check_lines(conn, tenant, lines)
        order = InboundOrder(
            id=uuid.uuid4(),
            tenant_id=tenant,
            reference=reference,
            supplier=supplier,
            location_id=where,
            expected_at=expected_at,
            urgent=urgent,
            instructions=instructions,
            properties=properties,
            status=status,  # type: ignore[arg-type]
            lines=tuple(InboundLine(sku, quantity) for sku, quantity in lines),
            version=1,
            created_at=now,
            updated_at=now,
        )
        if not await store.inbound.insert_order(conn, order):
            raise Duplicated(f"An inbound order with reference {reference!r} already exists.")
        saved = await _read(conn, tenant, order.id)
        await store.outbox.add_events(conn, [events.inbound_order_created(saved)])
        await _announce(conn, None, saved)
    return saved


async def get_inbound_order(pool: asyncpg.Pool, tenant: UUID, order_id: UUID) -> InboundOrder:
    async with pool.acquire() as conn:
        return await _read(conn, tenant, order_id)


async def list_inbound_orders(
    pool: asyncpg.Pool,
    tenant: UUID,
    *,
    statuses: Sequence[str] = (),
    locations: Sequence[str] = (),
    skus: Sequence[str] = (),
    expected_from: datetime | None = None,
    expected_to: datetime | None = None,
    limit: int,
    offset: int,
) -> tuple[list[InboundOrder], int]:
    """A page of inbound orders, oldest first, and how many match."""
    async with pool.acquire() as conn:
        return await store.inbound.list_orders(
            conn,
            tenant,
            statuses=statuses,
            locations=locations,
            skus=skus,
            expected_from=expected_from,
            expected_to=expected_to,
            limit=limit,
            offset=offset,
        )


async def list_receipts(
    pool: asyncpg.Pool, tenant: UUID, order_id: UUID, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the order's receipts, oldest first (`id`, `lines`, `actor`, `created_at`)."""
    async with pool.acquire() as conn:
        await _read(conn, tenant, order_id)  # 404 for an order that is not the tenant's
        return await store.inbound.list_receipts(conn, tenant, order_id, limit, offset)


async def update_inbound_order(
    pool: asyncpg.Pool,
    tenant: UUID,
    order_id: UUID,
    changes: dict[str, Any],
    expected_version: int | None = None,
) -> InboundOrder:
    """Change a draft or open order's fields (`CHANGEABLE`); `status` moves it between draft
    and open only. None given changes nothing (the version stays)."""
    if unknown := set(changes) - CHANGEABLE:
        raise ValueError(f"not a changeable field: {sorted(unknown)}")
    async with pool.acquire() as conn, conn.transaction():
        order = await _locked(conn, tenant, order_id, expected_version)
        _refuse_violation(check_editable, order)
        if not changes:
            return order
        if "status" in changes:
            check_new_status_or_invalid(changes["status"])
        fields = dict(changes)
        if "location_id" in fields:
            fields["location_id"] = await _location(conn, tenant, fields["location_id"])
        lines_changed = "lines" in fields
        if lines_changed:
            await _check_lines(conn, tenant, fields["lines"])
            fields["lines"] = tuple(InboundLine(sku, q) for sku, q in fields["lines"])
        saved = await store.inbound.save_order(
            conn, replace(order, **fields), lines_changed=lines_changed
        )
        if saved.status != order.status:
            await store.outbox.add_events(
                conn, [events.inbound_order_status_changed(saved, order.status)]
            )
        await _announce(conn, order, saved)
    return saved


async def cancel_inbound_order(
    pool: asyncpg.Pool, tenant: UUID, order_id: UUID, expected_version: int | None = None
) -> InboundOrder:
    """Cancel a draft or open order that nothing was received against."""
    async with pool.acquire() as conn, conn.transaction():
        order = await _locked(conn, tenant, order_id, expected_version)
        canceled = _refuse_violation(cancel_order, order)
        saved = await store.inbound.save_order(conn, canceled, lines_changed=False)
        await store.outbox.add_events(
            conn, [events.inbound_order_status_changed(saved, order.status)]
        )
        await _announce(conn, order, saved)
    return saved


async def close_inbound_order(
    pool: asyncpg.Pool,
    tenant: UUID,
    order_id: UUID,
    reason: str,
    expected_version: int | None = None,
) -> InboundOrder:
    """Close an open or receiving order by hand: the rest will never come."""
    async with pool.acquire() as conn, conn.transaction():
        order = await _locked(conn, tenant, order_id, expected_version)
        closed = _refuse_violation(lambda o: close_order(o, reason), order)
        saved = await store.inbound.save_order(conn, closed, lines_changed=False)
        await store.outbox.add_events(
            conn, [events.inbound_order_status_changed(saved, order.status)]
        )
        await _announce(conn, order, saved)
    return saved


async def receive(
    conn: asyncpg.Connection,
    tenant: UUID,
    order_id: UUID,
    lines: Sequence[ReceiptLine],
    actor: str,
) -> tuple[InboundOrder, UUID]:
    """Receive against an order, in the caller's transaction (which commits the
    Idempotency-Key's answer with it): on hand rises at the order's location by each line's
    quantity, with a ledger row each (reason `receipt`, reference the receipt's id).
    Returns the order after it and the receipt's id."""
    order = await _locked(conn, tenant, order_id, None)
    try:
        received = receive_lines(order, lines)
    except ReceiptInvalid as exc:
        raise Invalid(str(exc), errors=exc.errors) from None
    except InboundRuleViolation as exc:
        raise Conflict(str(exc)) from None
    receipt_id = uuid.uuid4()
    reference = str(receipt_id)
    units = {sku: n for sku, n in received.units.items() if n > 0}
    index = {line.sku: i for i, line in enumerate(lines)}
    records = await _lock_or_create(
        conn,
        tenant,
        [
            (order.location_id, sku, "/location_id", f"/lines/{index[sku]}/sku")
            for sku in sorted(units)
        ],
    )
    located: list[tuple[str, StockRecord, Any]] = [
        (
            f"/lines/{index[sku]}/quantity",
            records[(tenant, order.location_id, sku)],
            lambda r, n=n: apply_change(r, "receipt", n, 0, reference),
        )
        for sku, n in sorted(units.items())
    ]
    entries = _apply_all(located)
    await store.inbound.save_received(conn, received.order)
    saved = await store.inbound.save_order(conn, received.order, lines_changed=False)
    created_at = await store.inbound.insert_receipt(
        conn, tenant, receipt_id, order.id, lines, actor
    )
    more: list[events.Outgoing] = [
        events.inbound_order_received(saved, receipt_id, lines, created_at)
    ]
    if saved.status != order.status:
        more.append(events.inbound_order_status_changed(saved, order.status))
    await save_changes(conn, list(records.values()), entries, actor, notes=None, more_events=more)
    await _announce(conn, order, saved)
    return saved, receipt_id


async def incoming(
    conn: asyncpg.Connection, tenant: UUID, records: Sequence[StockRecord]
) -> list[int]:
    """Each record's incoming units: what expected inbound orders at its location still
    bring of its SKU."""
    found = await store.inbound.incoming(
        conn, tenant, list({(r.location_id, r.sku) for r in records})
    )
    return [found.get((r.location_id, r.sku), 0) for r in records]


async def incoming_read(
    pool: asyncpg.Pool, tenant: UUID, records: Sequence[StockRecord]
) -> list[int]:
    async with pool.acquire() as conn:
        return await incoming(conn, tenant, records)


async def _announce(
    conn: asyncpg.Connection, before: InboundOrder | None, after: InboundOrder
) -> None:
    """Re-announce the sales waiting where the order was or is expected, for its SKUs: what
    it brings, and when, may have changed their short lines' expected arrival."""
    orders = [o for o in (before, after) if o is not None and o.status in EXPECTED]
    skus = {line.sku for o in orders for line in o.lines}
    for location in sorted({o.location_id for o in orders}):
        await announce_waiting(conn, after.tenant_id, location, skus)


def check_new_status_or_invalid(status: str) -> None:
    try:
        check_new_status(status)
    except InboundRuleViolation as exc:
        raise Invalid(
            str(exc), errors=[{"field": "/status", "message": "must be draft or open"}]
        ) from None


def _refuse_violation(rule: Any, order: InboundOrder) -> Any:
    try:
        return rule(order)
    except InboundRuleViolation as exc:
        raise Conflict(str(exc)) from None


async def _read(conn: asyncpg.Connection, tenant: UUID, order_id: UUID) -> InboundOrder:
    order = await store.inbound.get_order(conn, tenant, order_id)
    if order is None:
        raise NotFound(f"No inbound order {order_id}.")
    return order


async def _locked(
    conn: asyncpg.Connection, tenant: UUID, order_id: UUID, expected_version: int | None
) -> InboundOrder:
    order = await store.inbound.get_order(conn, tenant, order_id, lock=True)
    if order is None:
        raise NotFound(f"No inbound order {order_id}.")
    if expected_version is not None and order.version != expected_version:
        raise Conflict(
            "The inbound order has changed since the version in If-Match.",
            errors=[{"field": "", "message": f"version is now {order.version}"}],
        )
    return order


async def _location(conn: asyncpg.Connection, tenant: UUID, location_id: str | None) -> str:
    if location_id is None:
        default = await store.inbound.default_location(conn, tenant)
        if default is None:
            raise Invalid(
                "No location_id given and the tenant has no default location.",
                errors=[{"field": "/location_id", "message": "required: no default location"}],
            )
        return default
    if not await store.inbound.location_exists(conn, tenant, location_id):
        raise Invalid(
            f"No location {location_id!r}.",
            errors=[{"field": "/location_id", "message": f"no location {location_id}"}],
        )
    return location_id


async def _check_lines(
    conn: asyncpg.Connection, tenant: UUID, lines: Sequence[tuple[str, int]]
) -> None:
    known = await store.catalogue.known_skus(conn, [(tenant, sku) for sku, _ in lines])
    errors, seen = [], set()
    for i, (sku, _) in enumerate(lines):
        if (tenant, sku) not in known:
            errors.append({"field": f"/lines/{i}/sku", "message": f"no product {sku}"})
        elif sku in seen:
            errors.append({"field": f"/lines/{i}/sku", "message": "listed twice"})
        seen.add(sku)
    if errors:
        raise Invalid("Some lines do not fit.", errors=errors)
