"""Stock rules: records, the ledger, and all-or-nothing reservations. No I/O here."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

Reason = Literal[
    "audit", "restock", "loss", "adjustment", "reservation", "release", "commit", "transfer"
]
ShortfallReason = Literal["insufficient_stock", "unknown_sku", "unknown_location"]


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

    @property
    def available(self) -> int:
        return self.quantity - self.reserved

    @property
    def key(self) -> tuple[UUID, str, str]:
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


def apply_change(
    record: StockRecord, reason: Reason, quantity_change: int, reserved_change: int,
    reference: str | None = None,
) -> LedgerEntry:
    quantity = record.quantity + quantity_change
    reserved = record.reserved + reserved_change
    if quantity < 0:
        raise StockRuleViolation(f"{record.sku} at {record.location_id} would fall below zero")
    if not 0 <= reserved <= quantity:
        raise StockRuleViolation(
            f"{record.sku} at {record.location_id}: {reserved} reserved of {quantity} on hand"
        )
    record.quantity, record.reserved, record.version = quantity, reserved, record.version + 1
    return LedgerEntry(
        record.id, record.tenant_id, record.location_id, record.sku, reason,
        quantity_change, reserved_change, quantity, reserved, record.version, reference,
    )


def opening_entry(record: StockRecord) -> LedgerEntry:
    """The first ledger row of a new record: its starting quantity, counted in an audit."""
    return LedgerEntry(
        record.id, record.tenant_id, record.location_id, record.sku, "audit",
        record.quantity, 0, record.quantity, 0, record.version, "created",
    )


@dataclass(frozen=True)
class SaleToReserve:
    sale: UUID
    sale_id: str
    tenant_id: UUID
    location_id: str
    lines: tuple[tuple[str, int], ...]

    def quantities(self) -> Counter[str]:
        wanted: Counter[str] = Counter()
        for sku, quantity in self.lines:
            wanted[sku] += quantity
        return wanted


@dataclass(frozen=True)
class Shortfall:
    sku: str
    requested: int
    available: int
    reason: ShortfallReason


@dataclass
class Reserved:
    sale: SaleToReserve
    lines: list[tuple[str, int, UUID]]
    entries: list[LedgerEntry] = field(default_factory=list)


@dataclass
class ReservationFailed:
    sale: SaleToReserve
    shortfalls: list[Shortfall]


def _shortfalls(
    sale: SaleToReserve, records: dict[tuple[UUID, str, str], StockRecord],
    location_known: bool, known_skus: set[tuple[UUID, str]],
) -> list[Shortfall]:
    missing = []
    for sku, wanted in sorted(sale.quantities().items()):
        record = records.get((sale.tenant_id, sale.location_id, sku))
        available = record.available if record else 0
        if not location_known:
            missing.append(Shortfall(sku, wanted, 0, "unknown_location"))
        elif (sale.tenant_id, sku) not in known_skus:
            missing.append(Shortfall(sku, wanted, 0, "unknown_sku"))
        elif available < wanted:
            missing.append(Shortfall(sku, wanted, available, "insufficient_stock"))
    return missing


def reserve_sales(
    sales: list[SaleToReserve],
    records: dict[tuple[UUID, str, str], StockRecord],
    known_locations: set[tuple[UUID, str]],
    known_skus: set[tuple[UUID, str]],
) -> list[Reserved | ReservationFailed]:
    """Reserve each sale in order, all of its lines or none; `records` are updated in place."""
    outcomes: list[Reserved | ReservationFailed] = []
    for sale in sales:
        location_known = (sale.tenant_id, sale.location_id) in known_locations
        shortfalls = _shortfalls(sale, records, location_known, known_skus)
        if shortfalls:
            outcomes.append(ReservationFailed(sale, shortfalls))
            continue
        reserved = Reserved(sale, [])
        for sku, wanted in sorted(sale.quantities().items()):
            record = records[(sale.tenant_id, sale.location_id, sku)]
            reserved.entries.append(apply_change(record, "reservation", 0, wanted, sale.sale_id))
            reserved.lines.append((sku, wanted, record.id))
        outcomes.append(reserved)
    return outcomes
