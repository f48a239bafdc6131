"""Fulfilment's use cases: claim sales for shipping, move fulfillments forward (pick, pack,
mark fulfillments shipped, deliver), read one, and follow the sales' own events.

`orders` alone decides a sale's status, so a fulfillment is created only for a sale orders
claimed, and marked shipped only after orders shipped its sale. If this service dies in
between, `follow_sales` (fed by the sale's events) finishes the job.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit import contracts as c
from fulfilkit.errors import NotFound
from fulfilkit.events import utcnow
from fulfilkit.faults import crash_point
from fulfilkit.models import code_error
from fulfilkit.outbox import Keyed, add_events
from fulfilkit.received import Event
from fulfilment import events, labels, store
from fulfilment.domain import (
    Fulfillment,
    Part,
    ShippingDetails,
    advance,
    choose_provider,
    fulfillment_number,
    movable,
    parts_of,
    why_not,
)
from fulfilment.orders_client import OrdersClient
from fulfilment.providers import PROVIDERS, display_name
from fulfilment.settings import FulfilmentSettings
from fulfilment.settled import Settled

SCHEMA = "fulfilment"


@dataclass(frozen=True)
class Refusal:
    """An item of a batch that was left as it was, and why; the others proceed."""

    item: str  # the sale_id or fulfillment id, as asked
    code: str  # validation, not_found, invalid_status (claims) or conflict
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)  # fulfillment_status, sale_status...


@dataclass(frozen=True)
class Outcome:
    # in the order asked; a sale's fulfillments (one per location it ships from) together,
    # in part order
    fulfillments: list[Fulfillment]
    refused: list[Refusal]


@dataclass(frozen=True)
class StatusUpdate:
    fulfillment: str  # its id, as asked: one that is no uuid is simply not found
    status: str


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _not_found(fulfillment: str) -> Refusal:
    return Refusal(fulfillment, "not_found", f"No fulfillment {fulfillment!r}.")


async def init_shipping(
    pool: asyncpg.Pool,
    orders: OrdersClient,
    settings: FulfilmentSettings,
    tenant: UUID,
    actor: str,
    sale_ids: Sequence[str],
    *,
    settled: Settled,
) -> Outcome:
    """Claim each pending sale for shipping and give it one fulfillment per location it
    ships from (one for a sale reserved at one location); report the others.

    A sale that already has its fulfillments keeps them (asking again answers the same), so
    only the others are claimed on orders. What it answers is committed, and noted in
    `settled`.
    """
    sale_ids = list(dict.fromkeys(sale_ids))
    refused = [
        Refusal(s, "validation", f"A sale_id {error}.")
        for s in sale_ids
        if (error := code_error(s)) is not None
    ]
    sale_ids = [s for s in sale_ids if code_error(s) is None]
    async with pool.acquire() as conn:
        existing = await store.by_sale_ids(conn, tenant, sale_ids)
    to_claim = [s for s in sale_ids if s not in existing]
    if to_claim:
        answer = await orders.claim(tenant, actor, to_claim)
        crash_point("fulfilment.after_claim")
        refused += [
            Refusal(e.sale_id, e.code, e.detail, {"status": e.status}) for e in answer.errors
        ]
        async with pool.acquire() as conn:  # the claimed sales had none when read
            existing |= await _ensure_fulfillments(conn, settings, tenant, answer.claimed, {})
    outcome = Outcome([f for s in sale_ids for f in existing.get(s, [])], refused)
    settled.committed(outcome.fulfillments)
    return outcome


async def update_fulfillment_statuses(
    pool: asyncpg.Pool,
    orders: OrdersClient,
    tenant: UUID,
    actor: str,
    updates: Sequence[StatusUpdate],
    *,
    settled: Settled,
) -> Outcome:
    """Move each fulfillment forward to its status; report those that cannot move. What
    moved is noted in `settled` once committed.

    To mark fulfillments shipped, orders ships their parts of their sales first (one ask for
    the batch; a sale is shipped once every part is): a part that cannot ship (its sale
    canceled, say) leaves its fulfillment where it was and never leaves the warehouse. One
    read decides; one statement then moves what nobody changed since (compare-and-set on
    its version), and a locking transaction decides again about the rest.
    """
    refused = [_not_found(u.fulfillment) for u in updates if _uuid(u.fulfillment) is None]
    targets = {fid: u.status for u in updates if (fid := _uuid(u.fulfillment)) is not None}
    async with pool.acquire() as conn:
        found = await store.get_many(conn, tenant, list(targets))
    wanted: dict[UUID, str] = {}
    for fid, target in targets.items():
        current = found.get(fid)
        if current is None:
            refused.append(_not_found(str(fid)))
        elif (why := why_not(current.status, target)) is not None:
            refused.append(
                Refusal(str(fid), "conflict", why, {"fulfillment_status": current.status})
            )
        else:
            wanted[fid] = target
    to_ship = {
        (found[fid].sale_id, found[fid].location): fid
        for fid, target in wanted.items()
        if target == "shipped"
    }
    if to_ship:
        answer = await orders.ship_parts(tenant, actor, list(to_ship))
        crash_point("fulfilment.after_ship_call")
        for error in answer.errors:
            for (sale_id, where), fid in to_ship.items():
                if sale_id != error.sale_id or error.location_id not in (None, where):
                    continue
                if wanted.pop(fid, None) is None:
                    continue
                refused.append(
                    Refusal(
                        str(fid),
                        "conflict",
                        f"The sale cannot ship: {error.detail}",
                        {"sale_status": error.sale_status},
                    )
                )
    if not wanted:
        return Outcome([], refused)
    # Usually nobody changed them since they were read: each moves in one statement, by
    # compare-and-set. Those that did change are decided again under their locks.
    moves = {
        fid: (after, events.fulfillment_status_changed(after, found[fid].status))
        for fid, target in wanted.items()
        if (after := advance(found[fid], target)) is not None
    }
    async with pool.acquire() as conn:
        written = await store.save_statuses_if_unchanged(conn, tenant, list(moves.values()))
    moved: dict[UUID, Fulfillment] = {
        fid: moves[fid][0] if fid in moves else found[fid]
        for fid in wanted
        if fid in written or fid not in moves  # there already: nothing to write
    }
    wanted = {fid: target for fid, target in wanted.items() if fid not in moved}
    if wanted:
        async with pool.acquire() as conn, conn.transaction():
            locked = await store.get_many(conn, tenant, list(wanted), lock=True)
            by_target: dict[str, list[Fulfillment]] = {}
            for fid, target in wanted.items():
                current = locked[fid]  # fulfillments are never deleted
                if (why := why_not(current.status, target)) is not None:
                    refused.append(
                        Refusal(str(fid), "conflict", why, {"fulfillment_status": current.status})
                    )
                else:
                    by_target.setdefault(target, []).append(current)
            for target, fulfillments in by_target.items():
                after = {f.id: f for f in await _move(conn, fulfillments, target)}
                moved |= {f.id: after.get(f.id, f) for f in fulfillments}
    settled.committed(moved.values())
    return Outcome([moved[fid] for fid in targets if fid in moved], refused)


async def get_fulfillment(pool: asyncpg.Pool, tenant: UUID, fulfillment: str) -> Fulfillment:
    key = _uuid(fulfillment)
    found = None
    if key is not None:
        async with pool.acquire() as conn:
            found = await store.get(conn, tenant, key)
    if found is None:
        raise NotFound(f"No fulfillment {fulfillment!r}.")
    return found


async def label_of(pool: asyncpg.Pool, tenant: UUID, fulfillment: str) -> labels.Label:
    """The shipping label of one of the tenant's fulfillments, which exists from shipping
    init on; NotFound before, and for an id the tenant has no fulfillment under."""
    key = _uuid(fulfillment)
    found = None
    if key is not None:
        async with pool.acquire() as conn:
            found = await store.with_shipping_details(conn, tenant, key)
    if found is None:
        raise NotFound(f"No fulfillment {fulfillment!r}.")
    f, details = found
    recipient, sender = None, labels.Party(f.location)
    if details is not None and details.shipping_address:
        recipient = labels.party(details.shipping_address, "", details.customer)
    if details is not None and details.sender is not None:
        where = details.sender
        sender = labels.Party(where["name"], labels.address_lines(where["address"]))
    return labels.Label(
        tracking_number=f.tracking_number,
        provider=display_name(f.shipping_provider),
        sender=sender,
        recipient=recipient,
        is_bulky=f.is_bulky,
        fulfillment_number=f.fulfillment_id,
        sale_id=f.sale_id,
        date_created=f.date_created,
        canceled=f.status == "canceled",
    )


async def follow_sales(
    conn: asyncpg.Connection,
    settings: FulfilmentSettings,
    batch: Sequence[Event[c.SaleStatusChanged]],
) -> None:
    """Make the fulfillments say what the sales' events say, in the consumer's transaction:
    a claimed sale has a fulfillment, a shipped or canceled sale's live fulfillment follows.

    Usually the request that claimed, shipped or canceled the sale has done it already; this
    finishes what a crash between orders' answer and that request's own write left undone.
    """
    claimed: dict[UUID, list[c.SaleSnapshot]] = {}
    for event in batch:
        if event.type == c.SALE_STATUS_CHANGED and event.data.status == "in_fulfillment":
            claimed.setdefault(event.tenantid, []).append(event.data)
    for tenant, sales in sorted(claimed.items()):
        await _ensure_fulfillments(conn, settings, tenant, sales)
    targets: dict[tuple[UUID, UUID], str] = {}  # the batch's last word on each sale
    for event in batch:
        if event.type == c.SALE_CANCELED:
            targets[(event.tenantid, event.data.id)] = "canceled"
        elif event.data.status == "shipped":
            targets[(event.tenantid, event.data.id)] = "shipped"
    if targets:
        await _move_live(conn, targets)


async def _ensure_fulfillments(
    conn: asyncpg.Connection,
    settings: FulfilmentSettings,
    tenant: UUID,
    sales: Sequence[c.SaleSnapshot],
    existing: dict[str, list[Fulfillment]] | None = None,
) -> dict[str, list[Fulfillment]]:
    """The fulfillments of each claimed sale, one per part (location it ships from), created
    where missing; by sale_id. `existing` is what the caller read of the sales' fulfillments
    (a sale it does not name had none); read here when not given.

    A unique index keeps one fulfillment per part, so concurrent callers (the request and
    the consumer) end with the same ones, and a canceled one is never replaced: a part
    someone else created meanwhile is read again. The fulfillments, their details and their
    events are written by one statement, so no transaction is needed around this.
    """
    sales = list({s.id: s for s in sales}.values())
    if existing is None:
        existing = await store.by_sale_ids(conn, tenant, [s.sale_id for s in sales])
    have = {(f.sale, f.location) for found in existing.values() for f in found}
    # One insertion order everywhere, so concurrent callers never deadlock on the index.
    missing = sorted(
        (
            (sale, index, part)
            for sale in sales
            for index, part in enumerate(parts_of(sale.location_id, sale.reservation))
            if (sale.id, part.location_id) not in have
        ),
        key=lambda m: (str(m[0].id), m[2].location_id),
    )
    by_provider: dict[str, list[tuple[c.SaleSnapshot, int, Part]]] = {}
    for sale, index, part in missing:
        provider = choose_provider(
            settings.shipping_provider_rules,
            part.location_id,
            sale.shop.channel,
            settings.default_shipping_provider,
        )
        by_provider.setdefault(provider, []).append((sale, index, part))
    now = utcnow()
    created: list[tuple[Fulfillment, ShippingDetails]] = []
    for name, group in by_provider.items():
        numbers = await PROVIDERS[name].allocate(conn, len(group))
        for (sale, index, part), number in zip(group, numbers, strict=True):
            fid = uuid.uuid4()
            f = Fulfillment(
                id=fid,
                tenant_id=tenant,
                fulfillment_id=fulfillment_number(fid),
                sale=sale.id,
                sale_id=sale.sale_id,
                location=part.location_id,
                status="waiting_for_picking",
                shipping_provider=name,
                tracking_number=number,
                is_bulky=part.is_bulky,
                version=1,
                date_created=now,
                shop_channel=sale.shop.channel,
                shop_name=sale.shop.shop_name,
                sale_date_created=sale.created_at,
                location_name=part.name,
                part=index,
            )
            details = ShippingDetails(fid, sale.customer, sale.shipping_address, part.sender)
            created.append((f, details))
    if not created:
        return existing
    created.sort(key=lambda fd: (str(fd[0].sale), fd[0].location))
    added = await store.create(conn, [(f, d, events.fulfillment_created(f)) for f, d in created])
    found = {sale_id: list(fs) for sale_id, fs in existing.items()}
    for f in added:
        found.setdefault(f.sale_id, []).append(f)
    taken = {f.id for f in added}
    lost = {f.sale_id for f, _ in created if f.id not in taken}
    if lost:  # created meanwhile by someone else: read as they are
        found |= await store.by_sale_ids(conn, tenant, sorted(lost))
    for fs in found.values():
        fs.sort(key=lambda f: f.part)
    return found


async def _move(
    conn: asyncpg.Connection, fulfillments: Sequence[Fulfillment], target: str
) -> list[Fulfillment]:
    """Move fulfillments (locked by the caller) to `target`, publishing each change; returns
    those that changed. Raises IllegalTransition if any of them cannot move."""
    outgoing: list[Keyed] = []
    changed: list[Fulfillment] = []
    for f in fulfillments:
        if (after := advance(f, target)) is not None:
            outgoing.append(events.fulfillment_status_changed(after, f.status))
            changed.append(after)
    await store.save_statuses(conn, changed)
    await add_events(conn, SCHEMA, outgoing)
    return changed


async def _move_live(conn: asyncpg.Connection, targets: dict[tuple[UUID, UUID], str]) -> None:
    """Move the sales' live fulfillments to their targets, leaving alone those that cannot.

    A plain read decides first and only what still has to move is locked (one query for the
    batch) and decided again. That is safe because statuses only move forward: a
    fulfillment that cannot move to its target now cannot later either.
    """

    def to_move(fulfillments: list[Fulfillment]) -> dict[str, list[Fulfillment]]:
        return {
            target: movable(
                [f for f in fulfillments if targets[(f.tenant_id, f.sale)] == target], target
            )
            for target in ("shipped", "canceled")
        }

    pending = to_move(await store.live_for_sales(conn, list(targets)))
    candidates = {(f.tenant_id, f.sale) for chosen in pending.values() for f in chosen}
    if not candidates:
        return
    locked = to_move(await store.live_for_sales(conn, sorted(candidates), lock=True))
    for target, chosen in locked.items():
        await _move(conn, chosen, target)
