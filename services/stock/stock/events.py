"""Turns stock outcomes into the platform's events (contracts in fulfilkit.contracts)."""

from uuid import UUID

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent, utcnow
from fulfilkit.outbox import Keyed
from stock.domain import LedgerEntry, ReservationFailed, Reserved

SOURCE = "/stock"


def stock_changed(entry: LedgerEntry) -> Keyed:
    data = c.StockChanged(
        id=entry.record_id, location_id=entry.location_id, sku=entry.sku,
        quantity=entry.quantity_after, reserved=entry.reserved_after,
        available=entry.quantity_after - entry.reserved_after, version=entry.version_after,
        updated_at=utcnow(), quantity_change=entry.quantity_change,
        reserved_change=entry.reserved_change, reason=entry.reason, reference=entry.reference,
    )
    return _keyed(c.stock_level_key(entry.tenant_id, entry.location_id, entry.sku),
                  c.STOCK_CHANGED, entry.tenant_id, f"stock-record/{entry.record_id}", data)


def reserved(reservation_id: UUID, outcome: Reserved) -> Keyed:
    sale = outcome.sale
    data = c.ReservationSnapshot(
        id=reservation_id, sale=sale.sale, sale_id=sale.sale_id, location_id=sale.location_id,
        status="active", version=1, updated_at=utcnow(),
        lines=[c.ReservationLine(sku=s, quantity=q, stock_record_id=r)
               for s, q, r in outcome.lines],
    )
    return _keyed(c.sale_key(sale.tenant_id, sale.sale), c.STOCK_RESERVED, sale.tenant_id,
                  f"sale/{sale.sale}", data)


def reservation_failed(outcome: ReservationFailed) -> Keyed:
    sale = outcome.sale
    data = c.ReservationFailed(
        sale=sale.sale, sale_id=sale.sale_id, location_id=sale.location_id,
        shortfalls=[c.Shortfall(sku=s.sku, requested=s.requested, available=s.available,
                                reason=s.reason) for s in outcome.shortfalls],
    )
    return _keyed(c.sale_key(sale.tenant_id, sale.sale), c.STOCK_RESERVATION_FAILED,
                  sale.tenant_id, f"sale/{sale.sale}", data)


def _keyed(key: str, type_: str, tenant_id: UUID, subject: str, data: object) -> Keyed:
    event: CloudEvent = c.make_event(
        source=SOURCE, type=type_, tenant_id=tenant_id, subject=subject, data=data  # type: ignore[arg-type]
    )
    return key, event
