"""What orders does, one function per use case: sales are created and wait for their stock,
canceled, claimed and shipped on request, and moved on by the outcomes other services
publish. Each change is written with its history, its events and the wake-up for waiters in
one transaction."""

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.errors import Conflict, DomainError, Duplicated, Invalid, NotFound
from fulfilkit.events import utcnow
from fulfilkit.inbox import Unrecorded
from fulfilkit.metrics import after_commit, sale_transitions, until_commit
from fulfilkit.notify import Waiter
from fulfilkit.received import Event
from orders import events, store
from orders.domain import (
    CancelReason,
    Edit,
    History,
    IllegalTransition,
    NewSale,
    NotAPart,
    NotEditable,
    Sale,
    StatusChange,
    VersionMismatch,
    add_fulfillment,
    apply_reservation_outcome,
    cancel,
    claim,
    created_history,
    edit,
    end_reservation,
    lines_naming,
    open_sale,
    ship_locations,
    ship_part,
    update_fulfillment,
)
from orders.returns import (
    BeyondShipped,
    IllegalReturnTransition,
    InvalidReceipt,
    Return,
    SaleNotReturnable,
    receive,
    request_return,
)
from orders.returns import cancel as cancel_return_
from orders.returns import close as close_

OUTCOMES_ACTOR = "orders:events"


@dataclass(frozen=True)
class Created:
    sales: list[tuple[Sale, History]]  # those created, in the order given
    # the others: their index in the order given, why (Duplicated, or Invalid for SKUs
    # outside the catalogue, with a pointer `/lines/<i>/sku` to each)
    refused: list[tuple[int, DomainError]]


@dataclass(frozen=True)
class Changed:
    done: list[Sale]  # changed, or already as asked; in the order asked
    refused: list[tuple[str, DomainError]]  # sale_id and why; in the order asked


@dataclass(frozen=True)
class PartsShipped:
    done: list[Sale]  # the sales of the parts shipped (now or before), each once, as asked
    # sale_id, location_id (None: the whole sale) and why; in the order asked
    refused: list[tuple[str, str | None, DomainError]]


# How often a create that names SKUs the catalogue copy lacks looks again, while it waits
# for stock's `product.created` to arrive.
CATALOGUE_POLL_SECONDS = 0.05


def _no_sale(sale_id: str) -> NotFound:
    return NotFound(f"No sale with sale_id {sale_id!r}.")


def _outside_catalogue(lines: list[tuple[int, str]]) -> Invalid:
    return Invalid(
        "The sale names SKUs that are not in the catalogue; create the products first.",
        errors=[
            {
                "field": f"/lines/{index}/sku",
                "message": f"No product with sku {sku!r} in the catalogue.",
                "in": "body",
            }
            for index, sku in lines
        ],
    )


async def _still_unknown(
    pool: asyncpg.Pool, tenant: UUID, missing: set[str], wait_seconds: float
) -> set[str]:
    """Those of `missing` that orders' copy of the catalogue still lacks after waiting up to
    `wait_seconds` for them (a product created a moment ago may not have reached the copy
    yet); no connection is held while waiting."""
    deadline = time.monotonic() + wait_seconds
    while missing and (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(CATALOGUE_POLL_SECONDS, left))
        async with pool.acquire() as conn:
            missing = missing - await store.known_skus(conn, tenant, missing)
    return missing


async def create_sales(
    pool: asyncpg.Pool,
    waiter: Waiter,
    tenant: UUID,
    actor: str,
    new: Sequence[NewSale],
    wait_seconds: float | None,
    catalogue_wait_seconds: float = 0.0,
) -> Created:
    """Create sales; a sale_id taken already, or earlier in `new`, is refused, and so is a
    sale naming a SKU outside the catalogue (after waiting up to `catalogue_wait_seconds`
    for the catalogue copy to learn it). With `wait_seconds`, each created sale is read back
    once its reservation outcome is in (or the time is up, then still `awaiting_stock`);
    without, it is answered as created."""
    now = utcnow()
    refused: list[tuple[int, DomainError]] = []
    seen: set[str] = set()
    unique: list[tuple[int, NewSale]] = []
    for index, order in enumerate(new):
        if order.sale_id in seen:
            detail = f"sale_id {order.sale_id!r} appears earlier in this batch."
            refused.append((index, Duplicated(detail)))
            continue
        seen.add(order.sale_id)
        unique.append((index, order))
    opened: list[tuple[int, Sale]] = []
    wait = wait_seconds is not None
    expected: dict[str, asyncio.Future[None]] = {}
    inserted: set[UUID] = set()

    async def insert(conn: asyncpg.Connection, missing: set[str]) -> set[str]:
        """Insert the sales that name no SKU of `missing`, if the catalogue holds every SKU
        they name; else insert nothing and return the SKUs it lacks."""
        nonlocal expected, inserted
        opened.clear()
        for index, order in unique:
            if not lines_naming(order, missing):
                opened.append((index, open_sale(tenant, order, now)))
        sales = [s for _, s in opened]
        for key, future in expected.items():  # of an attempt that inserted nothing
            waiter.forget(key, future)
        # expected before the insert: the outcome may be committed before it returns
        expected = {str(s.id): waiter.expect(str(s.id)) for s in sales} if wait else {}
        inserted, lacking = await store.insert_sales_of_known_skus(
            conn,
            sales,
            actor,
            [events.sale_created(s) for s in sales],
            {line["sku"] for s in sales for line in s.lines},
        )
        return lacking

    try:
        # the usual case: the catalogue holds every SKU, one statement checks and inserts
        async with pool.acquire() as conn:
            lacking = await insert(conn, set())
        if lacking:
            lacking = await _still_unknown(pool, tenant, lacking, catalogue_wait_seconds)
            async with pool.acquire() as conn:  # without the sales naming what still lacks
                if await insert(conn, lacking):  # products are never deleted: cannot be
                    raise RuntimeError("a SKU left orders' copy of the catalogue")
        refused += [
            (index, _outside_catalogue(outside))
            for index, order in unique
            if (outside := lines_naming(order, lacking))
        ]
        created = [s for _, s in opened if s.id in inserted]
        if wait:
            await waiter.wait_all(
                {str(s.id): expected[str(s.id)] for s in created}, wait_seconds or 0.0
            )
    finally:
        for key, future in expected.items():  # the refused ones too, or after an error
            waiter.forget(key, future)
    refused += [
        (index, Duplicated(f"A sale with sale_id {s.sale_id!r} exists."))
        for index, s in opened
        if s.id not in inserted
    ]
    refused.sort(key=lambda r: r[0])
    if not wait:  # the sales as created, whatever happened since
        return Created([(s, created_history(s, actor)) for s in created], refused)
    async with pool.acquire() as conn:
        found = await store.sales_with_history(conn, [s.id for s in created])
    return Created([found[s.id] for s in created], refused)


async def get_sale(pool: asyncpg.Pool, tenant: UUID, sale_id: str) -> tuple[Sale, History]:
    async with pool.acquire() as conn:
        found = await store.sale_with_history(conn, tenant, sale_id)
    if found is None:
        raise _no_sale(sale_id)
    return found


async def list_sales(
    pool: asyncpg.Pool,
    tenant: UUID,
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
    """One page of the tenant's sales, oldest first, and how many match in all."""
    async with pool.acquire() as conn:
        return await store.list_sales(
            conn,
            tenant,
            statuses=statuses,
            channel=channel,
            created_from=created_from,
            created_to=created_to,
            priority=priority,
            ship_by_before=ship_by_before,
            ship_by_after=ship_by_after,
            sale_id_prefix=sale_id_prefix,
            limit=limit,
            offset=offset,
        )


async def cancel_sale(
    pool: asyncpg.Pool,
    tenant: UUID,
    actor: str,
    sale_id: str,
    reason: CancelReason,
    version: int | None = None,
) -> Sale:
    """From now on the sale never ships; canceling it again changes nothing. With `version`,
    only if the sale is still at that version."""
    try:
        changed = await _change_each(
            pool,
            tenant,
            actor,
            [sale_id],
            lambda sale: cancel(sale, reason, version),
            _cannot_cancel,
        )
    except VersionMismatch as stale:
        raise Conflict(
            f"The sale has changed since version {stale.expected}: it is"
            f" {stale.sale.status} at version {stale.sale.version}.",
            sale_status=stale.sale.status,
            version=stale.sale.version,
        ) from None
    if changed.refused:
        raise changed.refused[0][1]
    return changed.done[0]


async def edit_sale(
    pool: asyncpg.Pool,
    waiter: Waiter,
    tenant: UUID,
    actor: str,
    sale_id: str,
    version: int | None,
    fields: dict[str, Any],
    wait_seconds: float | None,
    catalogue_wait_seconds: float = 0.0,
) -> tuple[Sale, History]:
    """Edit the sale at `version` (`domain.edit`), with its history entry (reason `edited`)
    and `sale.updated` in one transaction. New lines naming SKUs outside the catalogue are
    refused (Invalid, pointers `/lines/<i>/sku`) as at create. With `wait_seconds`, an edit
    that asked stock for a new reservation is answered once its outcome is in (or the time is
    up, then still `awaiting_stock`)."""
    if lines := fields.get("lines"):
        skus = {line["sku"] for line in lines}
        async with pool.acquire() as conn:
            missing = skus - await store.known_skus(conn, tenant, skus)
        missing = await _still_unknown(pool, tenant, missing, catalogue_wait_seconds)
        if missing:
            raise _outside_catalogue(
                [(i, line["sku"]) for i, line in enumerate(lines) if line["sku"] in missing]
            )
    future: asyncio.Future[None] | None = None
    done: Edit | None = None
    try:
        async with pool.acquire() as conn, conn.transaction():
            sales = await store.lock_sales_by_sale_id(conn, tenant, [sale_id])
            if (sale := sales.get(sale_id)) is None:
                raise _no_sale(sale_id)
            try:
                done = edit(sale, fields, version)
            except VersionMismatch:
                raise Conflict(
                    f"The sale has changed since version {version}: it is {sale.status} at"
                    f" version {sale.version}. Read it again and edit that version.",
                    sale_status=sale.status,
                    version=sale.version,
                ) from None
            except NotEditable:
                raise Conflict(
                    f"The sale is {sale.status}: a sale can be edited only while"
                    " awaiting_stock, backordered or pending (before shipping starts).",
                    sale_status=sale.status,
                    version=sale.version,
                ) from None
            if done is not None:
                if done.moves_reservation and wait_seconds is not None:
                    # expected before the commit: the outcome may be in right after it
                    future = waiter.expect(str(sale.id))
                await store.save_edit(conn, done, actor, events.sale_updated(done))
        if done is not None and done.previous != done.sale.status:
            sale_transitions([(done.previous, done.sale.status)])
        if future is not None:
            await waiter.wait_all({str(sale.id): future}, wait_seconds or 0.0)
    finally:
        if future is not None:
            waiter.forget(str(sale.id), future)
    return await get_sale(pool, tenant, sale_id)


def _cannot_cancel(sale: Sale) -> Conflict:
    if sale.status == "in_fulfillment" and sale.shipped_parts:
        shipped = [part["location_id"] for part in sale.shipped_parts]
        return Conflict(
            f"Part of the sale has shipped (from {', '.join(shipped)}): it can no longer be"
            " canceled.",
            sale_status=sale.status,
            shipped_locations=shipped,
        )
    return Conflict(
        f"The sale is {sale.status} and can no longer be canceled.", sale_status=sale.status
    )


async def claim_sales(
    pool: asyncpg.Pool, tenant: UUID, actor: str, sale_ids: Sequence[str]
) -> Changed:
    """Claim pending sales for shipping (`in_fulfillment`): each sale is claimed once."""
    return await _change_each(
        pool,
        tenant,
        actor,
        sale_ids,
        claim,
        lambda sale: Conflict(
            f"Only pending sales can be shipped; this one is {sale.status}.", status=sale.status
        ),
        lambda _: NotFound("No such sale."),
    )


async def ship_parts(
    pool: asyncpg.Pool, tenant: UUID, actor: str, parts: Sequence[tuple[str, str | None]]
) -> PartsShipped:
    """Ship parts of sales in fulfillment, each (sale_id, location_id): the units of the
    sale at that location of its reservation (None: every part). A sale is shipped once
    every location it ships from has; a part shipped already stays so; a part of a sale that
    is not in fulfillment (canceled, say) never ships."""
    parts = list(dict.fromkeys(parts))
    now = utcnow()
    if len(parts) == 1 and (sale := await _ship_unless_changed(pool, tenant, actor, *parts[0])):
        return PartsShipped([sale], [])
    done: dict[str, Sale] = {}
    refused: list[tuple[str, str | None, DomainError]] = []
    changes: list[StatusChange] = []
    touched: dict[UUID, Sale] = {}
    # the relay is woken in this process once it committed (`fulfilkit.outbox.relay_wake`)
    with until_commit():
        async with pool.acquire() as conn, conn.transaction():
            sales = await store.lock_sales_by_sale_id(conn, tenant, [s for s, _ in parts])
            for sale_id, where in parts:
                sale = sales.get(sale_id)
                if sale is None:
                    refused.append((sale_id, where, _no_sale(sale_id)))
                    continue
                shipped_before = len(sale.shipped_parts)
                try:
                    change = ship_part(sale, where, now)
                except IllegalTransition:
                    refused.append((sale_id, where, _cannot_ship(sale)))
                    continue
                except NotAPart:
                    detail = (
                        f"The sale ships nothing from {where!r}; it ships from"
                        f" {', '.join(ship_locations(sale))}."
                    )
                    refused.append((sale_id, where, Conflict(detail, sale_status=sale.status)))
                    continue
                changes += [change] if change else []
                if change or len(sale.shipped_parts) != shipped_before:
                    touched[sale.id] = sale
                done.setdefault(sale_id, sale)
            await _save(conn, list(touched.values()), changes, actor)
    sale_transitions((ch.previous, ch.sale.status) for ch in changes)
    return PartsShipped(list(done.values()), refused)


def _cannot_ship(sale: Sale) -> Conflict:
    return Conflict(f"The sale is {sale.status} and cannot ship.", sale_status=sale.status)


async def _ship_unless_changed(
    pool: asyncpg.Pool, tenant: UUID, actor: str, sale_id: str, location_id: str | None
) -> Sale | None:
    """The usual shipment of a sale's last (or only) part, in two statements and without a
    lock: read it, then write it only if nothing changed it meanwhile. None leaves the
    decision to the lock (and so does a part that leaves others to ship)."""
    async with pool.acquire() as conn:
        sale = await store.get_sale(conn, tenant, sale_id)
        if sale is None or sale.status != "in_fulfillment":
            return None
        shipped_before = list(sale.shipped_parts)
        try:
            change = ship_part(sale, location_id, utcnow())
        except NotAPart:
            return None
        if change is None:
            return None
        saved = await store.save_if_unchanged(
            conn, change, actor, events.status_changed(change), shipped_before
        )
    if saved:
        sale_transitions([(change.previous, change.sale.status)])
    return sale if saved else None


async def _change_each(
    pool: asyncpg.Pool,
    tenant: UUID,
    actor: str,
    sale_ids: Sequence[str],
    decide: Callable[[Sale], StatusChange | None],
    illegal: Callable[[Sale], DomainError],
    missing: Callable[[str], DomainError] = _no_sale,
) -> Changed:
    """Lock the tenant's sales by sale_id (in id order) and let `decide` change each: it
    returns the change, None when the sale is already there, or raises IllegalTransition to
    refuse it (`illegal` says why). Every change is saved in the same transaction."""
    changed = Changed([], [])
    changes: list[StatusChange] = []
    with until_commit():  # the relay is woken in this process once it committed
        async with pool.acquire() as conn, conn.transaction():
            sales = await store.lock_sales_by_sale_id(conn, tenant, sale_ids)
            for sale_id in dict.fromkeys(sale_ids):
                sale = sales.get(sale_id)
                if sale is None:
                    changed.refused.append((sale_id, missing(sale_id)))
                    continue
                try:
                    change = decide(sale)
                except IllegalTransition:
                    changed.refused.append((sale_id, illegal(sale)))
                    continue
                changes += [change] if change else []
                changed.done.append(sale)
            await _save(conn, [ch.sale for ch in changes], changes, actor)
    sale_transitions((ch.previous, ch.sale.status) for ch in changes)
    return changed


async def apply_outcomes(
    conn: asyncpg.Connection, batch: list[Event[Any]], unrecorded: Unrecorded
) -> None:
    """Apply stock's reservation outcomes and fulfilment's progress to their sales, in the
    inbox's transaction, recording the batch in the inbox with the lock of its sales in one
    statement (`store.record_and_lock`): an event recorded before is skipped. An event about a
    sale this tenant does not have changes nothing. A new product of stock's catalogue joins
    orders' copy of it."""
    fresh, sales = await store.record_and_lock(
        conn,
        unrecorded,
        [None if isinstance(e.data, c.ProductSnapshot) else c.sale_of(e.data) for e in batch],
    )
    batch = [e for e in batch if e.id in fresh]
    products = [(e.tenantid, e.data.sku) for e in batch if isinstance(e.data, c.ProductSnapshot)]
    await store.add_to_catalogue(conn, products)
    about_sales = [e for e in batch if not isinstance(e.data, c.ProductSnapshot)]
    changes: list[StatusChange] = []
    for event in about_sales:
        sale = sales.get(c.sale_of(event.data))
        if sale is None or sale.tenant_id != event.tenantid:
            continue
        data = event.data.model_dump(mode="json")  # kept on the sale as it was published
        change = None
        match event.data:
            case c.ReservationFailed():
                change = apply_reservation_outcome(sale, False, data)
            case c.ReservationSnapshot() if event.type == c.STOCK_RESERVED:
                change = apply_reservation_outcome(sale, True, data)
            case c.ReservationSnapshot():  # released or committed
                end_reservation(sale, data)
            case c.FulfillmentStatusChanged() | c.FulfillmentStatusChangedV1():
                del data["previous_status"]  # the sale shows the fulfillment as it is now
                change = update_fulfillment(sale, data)
            case c.FulfillmentSnapshot() | c.FulfillmentSnapshotV1():  # created
                add_fulfillment(sale, data)
        changes += [change] if change else []
    await _save(conn, list(sales.values()), changes, OUTCOMES_ACTOR)
    moved = [(ch.previous, ch.sale.status) for ch in changes]
    after_commit(lambda: sale_transitions(moved))


async def _save(
    conn: asyncpg.Connection, sales: Sequence[Sale], changes: Sequence[StatusChange], actor: str
) -> None:
    outgoing = [keyed for change in changes for keyed in events.status_changed(change)]
    await store.save(conn, sales, changes, actor, outgoing)


# --- returns ("Returns" in docs/api-guide.md) -------------------------------------------------


async def create_return(
    conn: asyncpg.Connection,
    tenant: UUID,
    sale_id: str,
    reason: str,
    lines: list[dict[str, Any]],
) -> Return:
    """A return of a shipped or delivered sale, with its `return.created`, in the caller's
    transaction. The sale's row is locked, so two returns of one sale are decided one after
    the other and never claim the same units twice."""
    sale = await store.lock_sale_for_return(conn, tenant, sale_id)
    if sale is None:
        raise _no_sale(sale_id)
    earlier = await store.returns_of_sale(conn, sale.id)
    try:
        ret = request_return(
            tenant, sale.id, sale.sale_id, sale.status, sale.lines, earlier, reason, lines, utcnow()
        )
    except SaleNotReturnable:
        raise Conflict(
            f"The sale is {sale.status}: only a shipped or delivered sale can be returned.",
            sale_status=sale.status,
        ) from None
    except BeyondShipped as beyond:
        raise Conflict(
            "The return asks for more than the sale may still return: what shipped less what"
            " its earlier returns claim.",
            errors=[
                {
                    "field": f"/lines/{e.index}/quantity",
                    "message": f"{e.asked} of {e.sku!r} asked, {e.remaining} may still be returned",
                }
                for e in beyond.excesses
            ],
            remaining={e.sku: e.remaining for e in beyond.excesses},
        ) from None
    await store.insert_return(conn, ret, events.return_created(ret))
    return ret


def _no_return(return_id: UUID) -> NotFound:
    return NotFound(f"No return {return_id}.")


async def receive_return(
    conn: asyncpg.Connection, tenant: UUID, return_id: UUID, lines: list[dict[str, Any]]
) -> Return:
    """What came back of a requested return, with `return.status_changed` (to `received`)
    in the caller's transaction; stock restocks and records the discards from that event."""
    ret = await store.lock_return(conn, tenant, return_id)
    if ret is None:
        raise _no_return(return_id)
    try:
        change = receive(ret, lines, utcnow())
    except IllegalReturnTransition:
        raise Conflict(
            f"The return is {ret.status}: only a requested return can be received.",
            return_status=ret.status,
        ) from None
    except InvalidReceipt as invalid:
        raise Invalid(
            "Some received lines do not match the return.",
            errors=[{"field": e.field, "message": e.message} for e in invalid.errors],
        ) from None
    await store.save_return(conn, ret, events.return_status_changed(change))
    return ret


async def close_return(conn: asyncpg.Connection, tenant: UUID, return_id: UUID) -> Return:
    """A received return is closed (closing it again changes nothing)."""
    return await _move_return(
        conn, tenant, return_id, close_, "only a received return can be closed"
    )


async def cancel_return(conn: asyncpg.Connection, tenant: UUID, return_id: UUID) -> Return:
    """A requested return is canceled: its units no longer count against what the sale may
    return (canceling it again changes nothing)."""
    return await _move_return(
        conn, tenant, return_id, cancel_return_, "only a requested return can be canceled"
    )


async def _move_return(
    conn: asyncpg.Connection,
    tenant: UUID,
    return_id: UUID,
    decide: Callable[[Return, datetime], Any],
    only: str,
) -> Return:
    """Lock the return and let `decide` move it (None: it is there already); a move it
    refuses is 409 `conflict`, saying `only` which returns can make it."""
    ret = await store.lock_return(conn, tenant, return_id)
    if ret is None:
        raise _no_return(return_id)
    try:
        change = decide(ret, utcnow())
    except IllegalReturnTransition:
        raise Conflict(f"The return is {ret.status}: {only}.", return_status=ret.status) from None
    if change is not None:
        await store.save_return(conn, ret, events.return_status_changed(change))
    return ret


async def get_return(pool: asyncpg.Pool, tenant: UUID, return_id: UUID) -> Return:
    async with pool.acquire() as conn:
        ret = await store.get_return(conn, tenant, return_id)
    if ret is None:
        raise _no_return(return_id)
    return ret


async def list_returns(
    pool: asyncpg.Pool,
    tenant: UUID,
    *,
    statuses: Sequence[str],
    sale_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Return], int]:
    async with pool.acquire() as conn:
        return await store.list_returns(
            conn, tenant, statuses=statuses, sale_id=sale_id, limit=limit, offset=offset
        )


async def returns_of_sales(pool: asyncpg.Pool, sales: Sequence[UUID]) -> dict[UUID, list[Return]]:
    """The returns of each sale (left out: a sale without any)."""
    if not sales:
        return {}
    async with pool.acquire() as conn:
        return await store.returns_of_sales(conn, sales)
