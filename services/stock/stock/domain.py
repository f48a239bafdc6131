"""Stock rules: records, the ledger, all-or-nothing reservations, low levels. No I/O here."""

from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from stock.bundles import Components, expand, per_bundle
from stock.routing import Site, primary, route, waiting_location

Reason = Literal[
    "audit",
    "restock",
    "loss",
    "adjustment",
    "reservation",
    "release",
    "commit",
    "transfer",
    # a returned sale's units: `return` puts them back on hand, `discard` records those
    # that will never be sold again (no quantity change); reference `return:<return id>`
    "return",
    "discard",
    "receipt",
    "build",
]
ShortfallReason = Literal[
    "insufficient_stock", "unknown_sku", "unknown_location", "backorder_denied"
]
RecordKey = tuple[UUID, str, str]


MAX_QUANTITY = 2_000_000_000  # what the integer columns hold, with room to spare


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    ean: str | None
    unit_type: str
    min_level: int
    is_bulky: bool
    version: int
    created_at: datetime
    updated_at: datetime
    backorders: "str | dict[str, int]" = "allow"  # "allow", "deny" or {"cap": N}
    out_of_stock_threshold: int = 0
    preorder: dict[str, Any] | None = None  # {"expected_at": ..., "lead_time_days": ...}
    infinite: bool = False
    components: list[dict[str, Any]] | None = None  # [{"sku", "quantity"}]: a bundle
    assembled: bool = False  # a bundle built into stock of its own

    @property
    def policy(self) -> "Policy":
        return Policy.of(self.backorders, self.preorder, self.infinite)


@dataclass(frozen=True)
class Policy:
    """How a product behaves when a sale asks for more than its location can sell.

    `cap` is None for `allow`, 0 for `deny`, N for `{"cap": N}`: how many units of the
    product may wait in one location's backorder queue. The threshold itself is on the
    stock record (`sellable`), read in the statement that locks it."""

    cap: int | None = None
    preorder: dict[str, Any] | None = None
    infinite: bool = False

    @classmethod
    def of(
        cls,
        backorders: "str | dict[str, int]",
        preorder: dict[str, Any] | None = None,
        infinite: bool = False,
    ) -> "Policy":
        cap = backorders["cap"] if isinstance(backorders, dict) else None
        return cls(0 if backorders == "deny" else cap, preorder, infinite)


@dataclass(frozen=True)
class Location:
    location_id: str
    name: str
    address: dict[str, Any] | None
    version: int
    created_at: datetime
    is_default: bool = False  # the tenant's default: where a routed sale waits for stock
    routing_priority: int = 0  # lower first when a sale is routed
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Place:
    """A location as a reservation names it, for shipping: its name and address (free-form,
    or None)."""

    name: str
    address: dict[str, Any] | None


class StockRuleViolation(Exception):
    """A change would leave a record below zero or below what is reserved."""


@dataclass
class StockRecord:
    id: UUID
    tenant_id: UUID
    location_id: str
    sku: str
    quantity: int
    reserved: int
    version: int
    min_level: int = 0
    low: bool = False
    is_bulky: bool = False
    updated_at: datetime | None = None  # as last saved; None for a record not yet saved
    threshold: int = 0  # the product's out_of_stock_threshold
    infinite: bool = False  # the product's

    @property
    def available(self) -> int:
        return self.quantity - self.reserved

    @property
    def sellable(self) -> int:
        """What a sale may reserve: available less the product's out_of_stock_threshold."""
        return max(0, self.available - self.threshold)

    @property
    def key(self) -> RecordKey:
        return (self.tenant_id, self.location_id, self.sku)


@dataclass(frozen=True)
class LedgerEntry:
    """One append-only movement, with the record's figures right after it."""

    record_id: UUID
    tenant_id: UUID
    location_id: str
    sku: str
    reason: Reason
    quantity_change: int
    reserved_change: int
    quantity_after: int
    reserved_after: int
    version_after: int
    reference: str | None = None


@dataclass(frozen=True)
class Movement:
    """A ledger row as stored: the entry, who made it and when."""

    id: int
    stock_record_id: UUID
    location_id: str
    sku: str
    reason: str
    quantity_change: int
    reserved_change: int
    quantity_after: int
    reserved_after: int
    actor: str
    reference: str | None
    notes: str | None
    created_at: datetime


def apply_change(
    record: StockRecord,
    reason: Reason,
    quantity_change: int,
    reserved_change: int,
    reference: str | None = None,
) -> LedgerEntry:
    quantity = record.quantity + quantity_change
    reserved = record.reserved + reserved_change
    if quantity < 0:
        raise StockRuleViolation(
            f"{record.sku} at {record.location_id} would have {quantity} on hand, below zero"
        )
    if quantity > MAX_QUANTITY:
        raise StockRuleViolation(
            f"{record.sku} at {record.location_id} would have {quantity} on hand,"
            f" more than the {MAX_QUANTITY} a record can hold"
        )
    if not 0 <= reserved <= quantity:
        raise StockRuleViolation(
            f"{record.sku} at {record.location_id} would have {quantity} on hand,"
            f" below the {reserved} reserved"
        )
    record.quantity, record.reserved, record.version = quantity, reserved, record.version + 1
    return LedgerEntry(
        record.id,
        record.tenant_id,
        record.location_id,
        record.sku,
        reason,
        quantity_change,
        reserved_change,
        quantity,
        reserved,
        record.version,
        reference,
    )


def set_on_hand(
    record: StockRecord, quantity: int, reason: Reason = "audit", reference: str | None = None
) -> LedgerEntry:
    return apply_change(record, reason, quantity - record.quantity, 0, reference)


def opening_entry(record: StockRecord) -> LedgerEntry:
    """The first ledger row of a new record: its starting quantity, counted in an audit."""
    return LedgerEntry(
        record.id,
        record.tenant_id,
        record.location_id,
        record.sku,
        "audit",
        record.quantity,
        0,
        record.quantity,
        0,
        record.version,
        "created",
    )


def newly_low(records: list[StockRecord]) -> list[StockRecord]:
    """Update each record's low flag; return those that just fell to or below min_level.

    A record alerts once, and again only after its available quantity rose above the level.
    """
    alerts = []
    for record in records:
        is_low = record.available <= record.min_level
        if is_low and not record.low:
            alerts.append(record)
        record.low = is_low
    return alerts


@dataclass(frozen=True)
class SaleToReserve:
    """A sale as stock reserves it: `location_id` None routes it (`stock.routing`)."""

    sale: UUID
    sale_id: str
    tenant_id: UUID
    location_id: str | None
    lines: tuple[tuple[str, int], ...]
    version: int | None = None  # the sale's, published with the outcome (`sale_version`)
    allow_split: bool = True
    # the bundles its lines name that reserve their components (`stock.bundles`)
    bundles: tuple[tuple[str, Components], ...] = ()

    @property
    def routed(self) -> bool:
        return self.location_id is None

    def needs(self) -> tuple[tuple[str, int], ...]:
        """The lines as stock reserves them: each bundle line as its components."""
        if not self.bundles:
            return self.lines
        return tuple(expand(self.lines, dict(self.bundles)))

    def quantities(self) -> Counter[str]:
        wanted: Counter[str] = Counter()
        for sku, quantity in self.needs():
            wanted[sku] += quantity
        return wanted

    def keys(self, sites: "Iterable[Site]" = ()) -> set[RecordKey]:
        """The records the sale reads: at its location, or at each of `sites` (its tenant's
        locations) when it is routed."""
        needs = self.needs()
        if self.location_id is not None:
            return {(self.tenant_id, self.location_id, sku) for sku, _ in needs}
        return {(self.tenant_id, s.location_id, sku) for s in sites for sku, _ in needs}


@dataclass(frozen=True)
class Shortfall:
    sku: str
    requested: int
    available: int  # sellable, when short of stock
    reason: ShortfallReason
    preorder: dict[str, Any] | None = None  # the product's, on a line short of stock


_WORST: tuple[ShortfallReason, ...] = (
    "unknown_location",
    "unknown_sku",
    "backorder_denied",
    "insufficient_stock",
)


def name_bundles(sale: SaleToReserve, shortfalls: list[Shortfall]) -> list[Shortfall]:
    """The shortfalls of a sale's components as the sale's lines name them: a bundle line
    short of any component is short itself, its `available` how many bundles the short
    components could make (the worst reason of theirs); a line of a stocked SKU keeps its
    own. Unchanged for a sale without bundles."""
    if not sale.bundles:
        return shortfalls
    definitions = dict(sale.bundles)
    short = {s.sku: s for s in shortfalls}
    sent: Counter[str] = Counter()
    for sku, quantity in sale.lines:
        sent[sku] += quantity
    named = []
    for sku, quantity in sorted(sent.items()):
        if sku not in definitions:
            if sku in short:
                s = short[sku]
                named.append(Shortfall(sku, quantity, s.available, s.reason, s.preorder))
            continue
        need = per_bundle(sku, definitions)
        theirs = [short[c] for c in need if c in short]
        if not theirs:
            continue
        reason = min((s.reason for s in theirs), key=_WORST.index)
        can = min(s.available // need[s.sku] for s in theirs)
        preorder = next((s.preorder for s in theirs if s.preorder), None)
        named.append(Shortfall(sku, quantity, can, reason, preorder))
    return named


@dataclass
class Reserved:
    sale: SaleToReserve
    lines: list[tuple[str, int, UUID]]
    entries: list[LedgerEntry] = field(default_factory=list)
    # a routed sale's: its primary location, and where each line's record is (by id)
    location_id: str | None = None
    at: dict[UUID, str] = field(default_factory=dict)


@dataclass
class ReservationFailed:
    sale: SaleToReserve
    shortfalls: list[Shortfall]
    # a routed sale's: the location it waits at (None: the tenant has no location)
    waits_at: str | None = None

    @property
    def location_id(self) -> str | None:
        """Where the sale waits for stock: its own location, or the one routing chose."""
        return self.sale.location_id if self.sale.location_id is not None else self.waits_at

    @property
    def denied(self) -> bool:
        """A line's product may not be backordered (this far): the sale is refused, not
        queued."""
        return any(s.reason == "backorder_denied" for s in self.shortfalls)


@dataclass
class Reservation:
    """A sale's reservation: `active` holds its units, `released` and `committed` are final.

    Lines are (sku, quantity, stock record id).
    """

    id: UUID
    tenant_id: UUID
    sale: UUID
    sale_id: str
    location_id: str
    status: str
    version: int
    lines: list[tuple[str, int, UUID]]
    # where each line's record is, by record id, when not at `location_id` (a split sale)
    at: dict[UUID, str] = field(default_factory=dict)
    sale_version: int | None = None

    def location_of(self, record_id: UUID) -> str:
        return self.at.get(record_id, self.location_id)

    def elsewhere(self) -> list[str]:
        """The locations other than `location_id` that lines are at, most units first (then
        by location_id)."""
        if not self.at:  # every line at `location_id`
            return []
        units: dict[str, int] = {}
        for _, quantity, rid in self.lines:
            if (where := self.location_of(rid)) != self.location_id:
                units[where] = units.get(where, 0) + quantity
        return sorted(units, key=lambda loc: (-units[loc], loc))


Policies = Mapping[tuple[UUID, str], Policy]
QueuedUnits = dict[RecordKey, int]


def _shortfalls(
    sale: SaleToReserve,
    records: dict[RecordKey, StockRecord],
    location_known: bool,
    policies: Policies,
    queued: QueuedUnits,
) -> list[Shortfall]:
    missing = []
    for sku, wanted in sorted(sale.quantities().items()):
        record = records.get((sale.tenant_id, sale.location_id, sku))
        policy = policies.get((sale.tenant_id, sku))
        sellable = record.sellable if record else 0
        if not location_known:
            missing.append(Shortfall(sku, wanted, 0, "unknown_location"))
        elif policy is None:
            missing.append(Shortfall(sku, wanted, 0, "unknown_sku"))
        elif policy.infinite:
            continue
        elif sellable < wanted:
            waiting = queued.get((sale.tenant_id, sale.location_id, sku), 0)
            denied = policy.cap is not None and waiting + wanted > policy.cap
            reason: ShortfallReason = "backorder_denied" if denied else "insufficient_stock"
            missing.append(Shortfall(sku, wanted, sellable, reason, policy.preorder))
    return missing


def reserve_sale(
    sale: SaleToReserve,
    records: dict[RecordKey, StockRecord],
    known_locations: Container[tuple[UUID, str]],
    policies: Policies,
    queued: QueuedUnits | None = None,
) -> Reserved | ReservationFailed:
    """Reserve all of a sale's lines or none; `records` are updated in place.

    A line may take a record's sellable units (available less the threshold); a line of an
    infinite product takes nothing and is not in the reservation. `queued` counts the units
    per record key already waiting in the backorder queue, for products with a cap (`deny`
    is a cap of 0); a short line over its cap is `backorder_denied`."""
    location_known = (sale.tenant_id, sale.location_id) in known_locations
    shortfalls = _shortfalls(sale, records, location_known, policies, queued or {})
    if shortfalls:
        return ReservationFailed(sale, name_bundles(sale, shortfalls))
    reserved = Reserved(sale, [])
    for sku, wanted in sorted(sale.quantities().items()):
        if policies[(sale.tenant_id, sku)].infinite:
            continue
        record = records[(sale.tenant_id, sale.location_id, sku)]
        reserved.entries.append(apply_change(record, "reservation", 0, wanted, sale.sale_id))
        reserved.lines.append((sku, wanted, record.id))
    return reserved


def reserve_routed(
    sale: SaleToReserve,
    records: dict[RecordKey, StockRecord],
    sites: Iterable[Site],
    policies: Policies,
    queued: QueuedUnits | None = None,
) -> Reserved | ReservationFailed:
    """Reserve a sale that names no location at the locations `stock.routing` picks among
    `sites` (its tenant's), all of its lines or none; `records` are updated in place.

    Policies apply as for a sale at one location: a location sells a record's sellable
    units; an infinite product's line takes nothing; a sale that cannot be reserved waits at
    the routing's waiting location, and its backorder policy (cap, deny) counts that
    location's queue. A short line's `available` is what every location together can sell
    when the sale may be split, else what the waiting location can."""
    sites = list(sites)
    tenant = sale.tenant_id
    wanted = sale.quantities()
    waits_at = waiting_location(sites)
    if waits_at is None:
        shortfalls = [Shortfall(sku, n, 0, "unknown_location") for sku, n in sorted(wanted.items())]
        return ReservationFailed(sale, name_bundles(sale, shortfalls), None)
    unknown = [sku for sku in sorted(wanted) if (tenant, sku) not in policies]
    if unknown:
        shortfalls = [Shortfall(sku, wanted[sku], 0, "unknown_sku") for sku in unknown]
        return ReservationFailed(sale, name_bundles(sale, shortfalls), waits_at)
    finite = {sku: n for sku, n in wanted.items() if not policies[(tenant, sku)].infinite}
    sellable = {
        (s.location_id, sku): r.sellable
        for s in sites
        for sku in finite
        if (r := records.get((tenant, s.location_id, sku)))
    }
    plan = route(finite, sellable, sites, sale.allow_split)
    if plan is None:
        shortfalls = []
        for sku, n in sorted(finite.items()):
            if sale.allow_split:
                there = sum(sellable.get((s.location_id, sku), 0) for s in sites)
            else:
                there = sellable.get((waits_at, sku), 0)
            if there >= n:
                continue
            policy = policies[(tenant, sku)]
            waiting = (queued or {}).get((tenant, waits_at, sku), 0)
            denied = policy.cap is not None and waiting + n > policy.cap
            reason: ShortfallReason = "backorder_denied" if denied else "insufficient_stock"
            shortfalls.append(Shortfall(sku, n, there, reason, policy.preorder))
        # never empty: had every line enough (together, or at the waiting location when
        # not split), the route would have found it
        return ReservationFailed(sale, name_bundles(sale, shortfalls), waits_at)
    # an empty plan (only infinite products) is placed at the first location in routing order
    where = primary(plan, sites) if plan else min(sites, key=lambda s: s.rank).location_id
    reserved = Reserved(sale, [], location_id=where)
    for location, sku, quantity in plan:
        record = records[(tenant, location, sku)]
        reserved.entries.append(apply_change(record, "reservation", 0, quantity, sale.sale_id))
        reserved.lines.append((sku, quantity, record.id))
        reserved.at[record.id] = location
    return reserved


def release(
    records: dict[UUID, StockRecord], lines: list[tuple[UUID, int]], reference: str
) -> list[LedgerEntry]:
    """A canceled sale's reserved units become available again."""
    return [apply_change(records[rid], "release", 0, -qty, reference) for rid, qty in lines]


def commit(
    records: dict[UUID, StockRecord], lines: list[tuple[UUID, int]], reference: str
) -> list[LedgerEntry]:
    """A shipped sale's units leave the building: on hand and reserved both fall."""
    return [apply_change(records[rid], "commit", -qty, -qty, reference) for rid, qty in lines]


@dataclass(frozen=True)
class Discrepancy:
    record_id: UUID
    location_id: str
    sku: str
    check: Literal["reserved_vs_reservations", "quantity_vs_ledger", "reserved_vs_ledger"]
    recorded: int
    expected: int


def find_discrepancies(
    records: list[StockRecord],
    active_reserved: dict[UUID, int],
    ledger_sums: dict[UUID, tuple[int, int]],
) -> list[Discrepancy]:
    """Compare each record with its active reservations and with the sum of its ledger."""
    found = []
    for r in records:
        quantity_sum, reserved_sum = ledger_sums.get(r.id, (0, 0))
        for check, recorded, expected in (
            ("reserved_vs_reservations", r.reserved, active_reserved.get(r.id, 0)),
            ("quantity_vs_ledger", r.quantity, quantity_sum),
            ("reserved_vs_ledger", r.reserved, reserved_sum),
        ):
            if recorded != expected:
                found.append(Discrepancy(r.id, r.location_id, r.sku, check, recorded, expected))  # type: ignore[arg-type]
    return found
