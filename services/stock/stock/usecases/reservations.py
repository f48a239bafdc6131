"""Reserve stock for sales, release it when they are canceled, commit it when they ship,
and retry the sales that wait for stock (the backorder queue).

Both use cases run in their caller's transaction (the inbox's, which records the events
applied with them; the backorder worker's) and lock the records they touch first.
"""

import uuid
from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal
from uuid import UUID

import asyncpg

from fulfilkit.db import in_transaction
from fulfilkit.metrics import after_commit, reservations
from stock import events, store
from stock.domain import (
    LedgerEntry,
    Place,
    Policies,
    QueuedUnits,
    RecordKey,
    Reservation,
    ReservationFailed,
    Reserved,
    SaleToReserve,
    StockRecord,
    commit,
    release,
    reserve_routed,
    reserve_sale,
)
from stock.routing import Site
from stock.store.reservations import Backorder
from stock.usecases._arrivals import arrivals
from stock.usecases._changes import save_changes

ACTOR = "stock:reservations"
BACKORDER_BATCH = 1000  # sales of one location retried in one transaction


SaleChangeKind = Literal["created", "edited", "canceled", "shipped"]
# The changes that reserve a sale's lines: its creation, and an edit of what to reserve.
RESERVING = ("created", "edited")


@dataclass(frozen=True)
class SaleChange:
    """What happened to a sale, as far as stock cares: it was created, edited (its lines or
    location), canceled or shipped."""

    kind: SaleChangeKind
    sale: SaleToReserve

    @property
    def key(self) -> tuple[UUID, UUID]:
        return (self.sale.tenant_id, self.sale.sale)


def _new_reservation(outcome: Reserved, status: str = "active") -> Reservation:
    """The reservation row of an outcome; a routed sale reserved nothing at (a tombstone)
    is at "" (the column is not null)."""
    sale = outcome.sale
    location = outcome.location_id or sale.location_id or ""
    return Reservation(
        uuid.uuid4(),
        sale.tenant_id,
        sale.sale,
        sale.sale_id,
        location,
        status,
        1,
        list(outcome.lines),
        {rid: loc for rid, loc in outcome.at.items() if loc != location},
        sale.version,
    )


def _backorder(failed: ReservationFailed) -> Backorder:
    sale = failed.sale
    return Backorder(
        sale.tenant_id,
        sale.sale,
        sale.sale_id,
        failed.location_id or "",
        # a bundle line waits as its components (the composition when the sale came)
        [{"sku": s, "quantity": q} for s, q in sale.needs()],
        routed=sale.routed,
        allow_split=sale.allow_split,
        sale_version=sale.version,
    )


def _reserve_one(
    sale: SaleToReserve,
    records: dict[RecordKey, StockRecord],
    places: Container[tuple[UUID, str]],
    sites: Mapping[UUID, list[Site]],
    policies: Policies,
    queued: QueuedUnits | None = None,
) -> Reserved | ReservationFailed:
    """A sale at its location, or routed over its tenant's locations."""
    if sale.routed:
        return reserve_routed(sale, records, sites.get(sale.tenant_id, ()), policies, queued)
    return reserve_sale(sale, records, places, policies, queued)


class _Batch:
    """What one transaction decides, collected so it is written set-wise at the end.

    `places` names the batch's locations, for the reservation events to say where the units
    are (a label's sender)."""

    def __init__(
        self, records: dict[RecordKey, StockRecord], places: dict[tuple[UUID, str], Place]
    ) -> None:
        self.bulky = {r.id for r in records.values() if r.is_bulky}
        self.places = places
        self.entries: list[LedgerEntry] = []
        self.new: dict[UUID, Reservation] = {}
        self.changed: dict[UUID, Reservation] = {}
        self.backorders: list[Backorder] = []
        self.unqueued: set[tuple[UUID, UUID]] = set()
        # an edit's: rows whose lines changed, rows gone (the sale waits in the queue), and
        # queue entries taken out before this batch queues anything
        self.rewritten: dict[UUID, Reservation] = {}
        self.dropped: set[UUID] = set()
        self.requeued: set[tuple[UUID, UUID]] = set()
        self.outgoing: list[events.Outgoing] = []
        self.outcomes: list[str] = []  # counted once the transaction committed
        self.failures: list[tuple[int, ReservationFailed]] = []

    def failed(self, outcome: ReservationFailed) -> None:
        """`stock.reservation_failed`, with its short lines' expected arrivals added at the
        end (`write`), in its place among the batch's events."""
        self.failures.append((len(self.outgoing), outcome))
        self.outgoing.append(events.reservation_failed(outcome))

    def add(self, row: Reservation) -> Reservation:
        self.new[row.id] = row
        return row

    def reserved(self, outcome: Reserved) -> Reservation:
        row = self.add(_new_reservation(outcome))
        self.outcomes.append("reserved")
        self.entries += outcome.entries
        self.outgoing.append(
            events.reservation(row, self.bulky, self._place(row), self._elsewhere(row))
        )
        return row

    def settle(self, row: Reservation, status: str, entries: list[LedgerEntry]) -> None:
        row.status, row.version = status, row.version + 1
        self.outcomes.append(status)
        self.entries += entries
        if row.id not in self.new:
            self.changed[row.id] = row
        self.outgoing.append(
            events.reservation(row, self.bulky, self._place(row), self._elsewhere(row))
        )

    def rewrite(self, row: Reservation, outcome: Reserved | None) -> None:
        """An edited sale's row holds `outcome`'s lines now (active), or nothing (released,
        when its new lines were refused); a new version, answering the edit's."""
        if outcome is not None:
            row.location_id = outcome.location_id or outcome.sale.location_id or ""
            row.lines = list(outcome.lines)
            row.at = {rid: loc for rid, loc in outcome.at.items() if loc != row.location_id}
            row.status = "active"
            self.outcomes.append("reserved")
            self.entries += outcome.entries
        else:
            row.lines, row.at, row.status = [], {}, "released"
        row.version += 1
        if row.id not in self.new:
            self.rewritten[row.id] = row
        if outcome is not None:
            self.outgoing.append(
                events.reservation(row, self.bulky, self._place(row), self._elsewhere(row))
            )

    def drop(self, row: Reservation) -> None:
        if self.new.pop(row.id, None) is None:
            self.dropped.add(row.id)
        self.changed.pop(row.id, None)
        self.rewritten.pop(row.id, None)

    def _place(self, row: Reservation) -> Place | None:
        return self.places.get((row.tenant_id, row.location_id))

    def _elsewhere(self, row: Reservation) -> list[tuple[str, Place | None]]:
        return [(loc, self.places.get((row.tenant_id, loc))) for loc in row.elsewhere()]

    async def write(self, conn: asyncpg.Connection, records: list[StockRecord]) -> None:
        if self.failures:
            found = await arrivals(conn, [f for _, f in self.failures])
            for (at, failure), expected in zip(self.failures, found, strict=True):
                if expected:
                    self.outgoing[at] = events.reservation_failed(failure, expected)
        await store.reservations.delete_reservations(conn, self.dropped)
        await store.reservations.delete_backorders(conn, self.requeued)
        await store.reservations.insert_reservations(conn, list(self.new.values()))
        await store.reservations.update_reservations(conn, list(self.changed.values()))
        await store.reservations.rewrite_reservations(conn, list(self.rewritten.values()))
        await store.reservations.insert_backorders(conn, self.backorders)
        await store.reservations.delete_backorders(conn, self.unqueued)
        await save_changes(conn, records, self.entries, ACTOR, more_events=self.outgoing)
        outcomes = self.outcomes + ["backordered"] * len(self.backorders)
        after_commit(lambda: reservations(outcomes))


async def reserve_sales(conn: asyncpg.Connection, changes: Sequence[SaleChange]) -> None:
    """Reserve each created sale, all of its lines or none (else it waits in the backorder
    queue and `stock.reservation_failed` says why); release the reservations of canceled
    sales and commit those of shipped ones. The changes apply in order, so sales created
    together compete for stock in the order they came, and a sale created and canceled in
    one batch ends released.

    Idempotent per sale: a reservation, once active, released or committed, never repeats;
    a cancel leaves a released tombstone, so a late or replayed creation reserves nothing.
    """
    if not changes:
        return
    changes = await _expanded(conn, changes)
    keys = {e.key for e in changes}
    # Records to lock for releases and commits; a sale being created reserves fresh ones,
    # at its location or, routed, at any of its tenant's.
    known = await store.reservations.reservations_for(
        conn, {e.key for e in changes if e.kind != "created"}
    )
    created = [e.sale for e in changes if e.kind in RESERVING]
    # An edited sale waiting in a queue: the records a retry of that queue would lock for
    # it are locked too, so the two never decide about the sale at the same time.
    was_queued = await store.reservations.backorders_of(
        conn, {e.key for e in changes if e.kind == "edited"}
    )
    sites, site_places = await store.reservations.sites_of(
        conn,
        {s.tenant_id for s in created if s.routed}
        | {b.tenant_id for b in was_queued.values() if b.routed},
    )
    wanted = {k for s in created for k in s.keys(sites.get(s.tenant_id, ()))}
    wanted |= {k for b in was_queued.values() for k in _queued_keys(b, sites)}
    # the places of the events: each sale's location, each reservation's and its lines'
    held = {(r.tenant_id, r.location_of(ln[2])) for r in known.values() for ln in r.lines}
    held |= {(r.tenant_id, r.location_id) for r in known.values()}
    wanted |= {(r.tenant_id, r.location_of(ln[2]), ln[0]) for r in known.values() for ln in r.lines}
    records = await store.records.lock_records(conn, wanted)
    by_id = {r.id: r for r in records.values()}
    reservations = await store.reservations.reservations_for(conn, keys, lock=True)
    locations, policies, queued = await store.reservations.known_for_batch(
        conn,
        {(e.sale.tenant_id, e.sale.location_id) for e in changes if not e.sale.routed} | held,
        {(t, sku) for t, _, sku in wanted},
        keys,
    )
    locations |= site_places
    capped = {k for k in wanted if (p := policies.get((k[0], k[2]))) and p.cap}
    units = await store.reservations.queued_units(conn, capped)
    waiting = await store.reservations.backorders_of(
        conn, {e.key for e in changes if e.kind == "edited" and e.key in queued}
    )

    read = Known(records, by_id, locations, sites, policies, units, capped)

    out = _Batch(records, locations)
    for e in changes:
        if e.kind == "edited":
            _edit(e.sale, out, reservations, queued, waiting, read)
            continue
        row = reservations.get(e.key)
        lines = [(rid, qty) for _, qty, rid in row.lines] if row else []
        if e.kind == "created" and row is None and e.key not in queued:
            outcome = _reserve_one(e.sale, records, locations, sites, policies, units)
            if isinstance(outcome, Reserved):
                reservations[e.key] = out.reserved(outcome)
            elif outcome.denied:  # refused, not queued; a replay finds the tombstone
                reservations[e.key] = out.add(_new_reservation(Reserved(e.sale, []), "released"))
                out.failed(outcome)
            elif outcome.location_id is None:  # routed, and the tenant has no location
                out.failed(outcome)
            else:
                for sku, quantity in e.sale.needs():
                    key = (e.sale.tenant_id, outcome.location_id, sku)
                    if key in capped:
                        units[key] = units.get(key, 0) + quantity
                queued.add(e.key)
                out.backorders.append(_backorder(outcome))
                out.failed(outcome)
        elif e.kind == "canceled":
            if row is None:  # a tombstone, so a late or replayed sale.created reserves nothing
                tomb = _new_reservation(Reserved(e.sale, []), "released")
                reservations[e.key] = out.add(tomb)
            elif row.status == "active":
                out.settle(row, "released", release(by_id, lines, e.sale.sale_id))
            if e.key in queued:
                queued.discard(e.key)
                out.unqueued.add(e.key)
        elif e.kind == "shipped" and row is not None and row.status == "active":
            out.settle(row, "committed", commit(by_id, lines, e.sale.sale_id))
    await out.write(conn, list(records.values()))


async def _expanded(conn: asyncpg.Connection, changes: Sequence[SaleChange]) -> list[SaleChange]:
    """The changes, each sale to reserve knowing the bundles its lines name (expanded into
    their components before the records to lock are chosen); as they are without bundles."""
    asked = {
        (e.sale.tenant_id, sku) for e in changes if e.kind in RESERVING for sku, _ in e.sale.lines
    }
    definitions = await store.catalogue.bundle_definitions(conn, asked)
    if not definitions:
        return list(changes)
    out = []
    for e in changes:
        mine = definitions.get(e.sale.tenant_id)
        if e.kind in RESERVING and mine and any(sku in mine for sku, _ in e.sale.lines):
            e = SaleChange(e.kind, replace(e.sale, bundles=tuple(sorted(mine.items()))))
        out.append(e)
    return out


def _queued_keys(entry: Backorder, sites: Mapping[UUID, list[Site]]) -> set[RecordKey]:
    """The records a retry of its queue locks for a queued sale: its lines at its location,
    or at each of its tenant's locations when it is routed."""
    at = [s.location_id for s in sites.get(entry.tenant_id, ())] if entry.routed else []
    return {
        (entry.tenant_id, location, line["sku"])
        for location in at or [entry.location_id]
        for line in entry.lines
    }


@dataclass(frozen=True)
class Known:
    """What a batch read besides its reservations and queue: the records it locked (also by
    id), the places, each routed tenant's sites, the products' policies, and the units
    queued at capped records."""

    records: dict[RecordKey, StockRecord]
    by_id: dict[UUID, StockRecord]
    places: dict[tuple[UUID, str], Place]
    sites: Mapping[UUID, list[Site]]
    policies: Policies
    units: dict[RecordKey, int]
    capped: set[RecordKey]


def _edit(
    sale: SaleToReserve,
    out: _Batch,
    reservations: dict[tuple[UUID, UUID], Reservation],
    queued: set[tuple[UUID, UUID]],
    waiting: dict[tuple[UUID, UUID], Backorder],
    known: Known,
) -> None:
    """A sale's lines or location were edited: release what it holds (or take it off its
    backorder queue) and reserve its new lines, all of them or none, in this transaction;
    routed when it names no location. Short, it waits in the queue again without a
    reservation row, as a sale created short; refused (backorders denied), its row is a
    released tombstone. Each outcome answers the edit's version (`sale_version`).

    An edit not newer than the version the sale's row or queue entry answers is stale (a
    replay, or overtaken): it changes nothing. So does one of a sale already committed."""
    key = (sale.tenant_id, sale.sale)
    row = reservations.get(key)
    entry = next((b for b in out.backorders if (b.tenant_id, b.sale) == key), None)
    entry = (entry or waiting.get(key)) if key in queued else None
    answered = row.sale_version if row is not None else entry.sale_version if entry else None
    if answered is not None and sale.version is not None and sale.version <= answered:
        return
    if row is not None and row.status == "committed":
        return
    if row is not None and row.status == "active":
        held = [(rid, qty) for _, qty, rid in row.lines]
        out.entries += release(known.by_id, held, sale.sale_id)
    if entry is not None:
        for line in entry.lines:
            at = (sale.tenant_id, entry.location_id, line["sku"])
            if at in known.capped:
                known.units[at] = known.units.get(at, 0) - line["quantity"]
        queued.discard(key)
        if entry in out.backorders:
            out.backorders.remove(entry)
        else:
            out.requeued.add(key)
    outcome = _reserve_one(
        sale, known.records, known.places, known.sites, known.policies, known.units
    )
    if isinstance(outcome, Reserved):
        if row is None:
            reservations[key] = out.reserved(outcome)
        else:
            row.sale_version = sale.version
            out.rewrite(row, outcome)
        return
    out.failed(outcome)
    if outcome.denied:  # refused, not queued: the sale is canceled, its row a tombstone
        if row is None:
            reservations[key] = out.add(_new_reservation(Reserved(sale, []), "released"))
        else:
            row.sale_version = sale.version
            out.rewrite(row, None)
        return
    if row is not None:
        out.drop(row)
        del reservations[key]
    if outcome.location_id is None:  # routed, and the tenant has no location
        return
    for sku, quantity in sale.needs():
        at = (sale.tenant_id, outcome.location_id, sku)
        if at in known.capped:
            known.units[at] = known.units.get(at, 0) + quantity
    queued.add(key)
    out.backorders.append(_backorder(outcome))


async def retry_backorders(
    conn: asyncpg.Connection, tenant_id: UUID, location_id: str, limit: int = BACKORDER_BATCH
) -> bool:
    """Retry one location's queue, oldest first; each sale that now fits is reserved (by the
    same rule as `reserve_sales`) and leaves the queue.

    Returns True when the queue had more than `limit` sales, so another round is due.
    """
    waiting = await store.reservations.waiting_backorders(conn, tenant_id, location_id, limit)
    if not waiting:
        return False
    sales = [
        SaleToReserve(
            b.sale,
            b.sale_id,
            tenant_id,
            None if b.routed else location_id,
            tuple((ln["sku"], ln["quantity"]) for ln in b.lines),
            b.sale_version,
            b.allow_split,
        )
        for b in waiting
    ]
    sites, site_places = await store.reservations.sites_of(
        conn, [tenant_id] if any(s.routed for s in sales) else []
    )
    records = await store.records.lock_records(
        conn, {k for s in sales for k in s.keys(sites.get(tenant_id, ()))}
    )
    still_waiting = await store.reservations.lock_backorders(conn, [b.seq for b in waiting])
    locations, policies, _ = await store.reservations.known_for_batch(
        conn,
        [(tenant_id, location_id)],
        {(tenant_id, sku) for s in sales for sku, _ in s.lines},
        (),
    )
    locations |= site_places
    out = _Batch(records, locations)
    endless = any(p.infinite for p in policies.values())  # a sale may need no stock at all
    for backorder, sale in zip(waiting, sales, strict=True):
        if not endless and not any(r.sellable > 0 for r in records.values()):
            break
        if backorder.seq not in still_waiting:
            continue
        outcome = _reserve_one(sale, records, locations, sites, policies)
        if isinstance(outcome, Reserved):
            out.reserved(outcome)
            out.unqueued.add((tenant_id, sale.sale))
    await out.write(conn, list(records.values()))
    return len(waiting) == limit


async def retry_woken_backorders(pool: asyncpg.Pool) -> int:
    """Retry the queue of each location whose stock went up since the last call, each in a
    transaction of its own, so a restock never waits for a queue. Returns how many queues.

    A location whose queue held more than one round asks to be woken again.
    """
    async with pool.acquire() as conn:
        locations = await store.reservations.claim_wakeups(conn)
    for tenant_id, location_id in locations:

        async def retry(conn: asyncpg.Connection) -> bool:
            return await retry_backorders(conn, tenant_id, location_id)  # noqa: B023

        if await in_transaction(pool, retry):
            async with pool.acquire() as conn:
                await store.reservations.request_backorder_retry(conn, [(tenant_id, location_id)])
    return len(locations)


async def wake_every_backorder(pool: asyncpg.Pool) -> None:
    """Ask for a retry of every location that has backorders: a wake-up claimed by a
    worker that died before retrying would otherwise wait for the next stock increase."""
    async with pool.acquire() as conn:
        await store.reservations.wake_every_backordered_location(conn)


ANNOUNCE_LIMIT = 1000  # waiting sales of one location re-announced in one transaction


async def announce_waiting(
    conn: asyncpg.Connection, tenant_id: UUID, location_id: str, skus: Collection[str]
) -> None:
    """A fresh `stock.reservation_failed` (same `sale_version`) for each sale waiting at the
    location with a line of one of `skus`, so that its short lines' expected arrivals are
    current after an inbound order there changed. Nothing is reserved here: a sale that
    would fit now is left to the backorder worker. The queue rows are locked, so a worker
    reserving one of these sales answers after this announcement, never before."""
    waiting = await store.inbound.waiting_for(
        conn, tenant_id, location_id, sorted(skus), ANNOUNCE_LIMIT
    )
    still_waiting = await store.reservations.lock_backorders(conn, [b.seq for b in waiting])
    waiting = [b for b in waiting if b.seq in still_waiting]
    if not waiting:
        return
    sales = [
        SaleToReserve(
            b.sale,
            b.sale_id,
            tenant_id,
            None if b.routed else location_id,
            tuple((ln["sku"], ln["quantity"]) for ln in b.lines),
            b.sale_version,
            b.allow_split,
        )
        for b in waiting
    ]
    sites, site_places = await store.reservations.sites_of(
        conn, [tenant_id] if any(s.routed for s in sales) else []
    )
    records = await store.inbound.read_records(
        conn, {k for s in sales for k in s.keys(sites.get(tenant_id, ()))}
    )
    locations, policies, _ = await store.reservations.known_for_batch(
        conn,
        [(tenant_id, location_id)],
        {(tenant_id, sku) for s in sales for sku, _ in s.lines},
        (),
    )
    locations |= site_places
    failures = []
    for sale in sales:
        looked = {k: replace(r) for k, r in records.items()}  # nothing is reserved
        outcome = _reserve_one(sale, looked, locations, sites, policies)
        if isinstance(outcome, ReservationFailed) and not outcome.denied:
            failures.append(outcome)
    found = await arrivals(conn, failures)
    await store.outbox.add_events(
        conn,
        [
            events.reservation_failed(f, expected)
            for f, expected in zip(failures, found, strict=True)
        ],
    )
