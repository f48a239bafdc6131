"""Turns stock outcomes into the platform's events (contracts in fulfilkit.contracts)."""

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from fulfilkit import contracts as c
from fulfilkit.events import utcnow
from fulfilkit.outbox import Keyed
from stock.domain import LedgerEntry, Place, Product, Reservation, ReservationFailed, StockRecord
from stock.inbound import InboundOrder, ReceiptLine

SOURCE = "/stock"
RESERVATION_TYPES = {
    "active": c.STOCK_RESERVED,
    "released": c.STOCK_RELEASED,
    "committed": c.STOCK_COMMITTED,
}


def stock_changed(entry: LedgerEntry) -> Keyed:
    data = c.StockChanged(
        id=entry.record_id,
        location_id=entry.location_id,
        sku=entry.sku,
        quantity=entry.quantity_after,
        reserved=entry.reserved_after,
        available=entry.quantity_after - entry.reserved_after,
        version=entry.version_after,
        updated_at=utcnow(),
        quantity_change=entry.quantity_change,
        reserved_change=entry.reserved_change,
        reason=entry.reason,
        reference=entry.reference,
    )
    return _level_event(
        entry.tenant_id, entry.location_id, entry.sku, entry.record_id, c.STOCK_CHANGED, data
    )


def product_created(tenant_id: UUID, product: Product) -> Keyed:
    """The catalogue's new SKU, for those who keep a copy of the catalogue (orders)."""
    event = c.make_event(
        source=SOURCE,
        type=c.PRODUCT_CREATED,
        tenant_id=tenant_id,
        subject=f"product/{product.sku}",
        data=c.ProductSnapshot(**vars(product)),
    )
    return c.product_key(tenant_id, product.sku), event


def stock_low(record: StockRecord) -> Keyed:
    data = c.StockLow(
        id=record.id,
        location_id=record.location_id,
        sku=record.sku,
        quantity=record.quantity,
        reserved=record.reserved,
        available=record.available,
        version=record.version,
        updated_at=utcnow(),
        min_level=record.min_level,
    )
    return _level_event(
        record.tenant_id, record.location_id, record.sku, record.id, c.STOCK_LOW, data
    )


def _location(place: Place | None) -> c.ReservationLocation | None:
    return None if place is None else c.ReservationLocation(**vars(place))


def reservation(
    row: Reservation,
    bulky: Collection[UUID] = (),
    place: Place | None = None,
    elsewhere: Sequence[tuple[str, Place | None]] = (),
) -> Keyed:
    """stock.reserved, stock.released or stock.committed, after the reservation's status.

    `bulky` holds the ids of stock records whose product is bulky, and `place` the name and
    address of the location, for shipping's sake (a label's sender); `elsewhere` the other
    locations a split sale's lines are at, with theirs.
    """
    data = c.ReservationSnapshot(
        id=row.id,
        sale=row.sale,
        sale_id=row.sale_id,
        location_id=row.location_id,
        location=_location(place),
        status=row.status,  # type: ignore[arg-type]
        version=row.version,
        updated_at=utcnow(),
        lines=[
            c.ReservationLine(
                sku=s, quantity=q, stock_record_id=r, is_bulky=r in bulky, location_id=row.at.get(r)
            )
            for s, q, r in row.lines
        ],
        other_locations=[
            c.ReservationPlace(location_id=loc, location=_location(p)) for loc, p in elsewhere
        ],
        sale_version=row.sale_version,
    )
    return _sale_event(row.tenant_id, row.sale, RESERVATION_TYPES[row.status], data)


def reservation_failed(
    outcome: ReservationFailed, arrivals: Mapping[str, datetime] | None = None
) -> Keyed:
    """Why a sale could not be reserved; `arrivals` holds, by SKU, when an inbound order
    expected at the sale's location would fill its short line."""
    sale = outcome.sale
    arrivals = arrivals or {}
    data = c.ReservationFailed(
        sale=sale.sale,
        sale_id=sale.sale_id,
        location_id=outcome.location_id,
        sale_version=sale.version,
        shortfalls=[
            c.Shortfall(
                sku=s.sku,
                requested=s.requested,
                available=s.available,
                reason=s.reason,
                preorder=s.preorder,  # type: ignore[arg-type]
                expected_at=arrivals.get(s.sku),
            )
            for s in outcome.shortfalls
        ],
    )
    return _sale_event(sale.tenant_id, sale.sale, c.STOCK_RESERVATION_FAILED, data)


def _inbound_fields(order: InboundOrder) -> dict:
    return {
        "id": order.id,
        "reference": order.reference,
        "supplier": order.supplier,
        "location_id": order.location_id,
        "expected_at": order.expected_at,
        "urgent": order.urgent,
        "instructions": order.instructions,
        "properties": order.properties,
        "status": order.status,
        "close_reason": order.close_reason,
        "lines": [
            c.InboundOrderLine(sku=line.sku, quantity=line.quantity, received=line.received)
            for line in order.lines
        ],
        "version": order.version,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def inbound_order_created(order: InboundOrder) -> Keyed:
    return _inbound_event(
        order, c.INBOUND_ORDER_CREATED, c.InboundOrderSnapshot(**_inbound_fields(order))
    )


def inbound_order_status_changed(order: InboundOrder, previous_status: str) -> Keyed:
    data = c.InboundOrderStatusChanged(
        **_inbound_fields(order),
        previous_status=previous_status,  # type: ignore[arg-type]
    )
    return _inbound_event(order, c.INBOUND_ORDER_STATUS_CHANGED, data)


def inbound_order_received(
    order: InboundOrder, receipt_id: UUID, lines: Sequence[ReceiptLine], created_at: datetime
) -> Keyed:
    receipt = c.Receipt(
        id=receipt_id,
        lines=[c.ReceiptLine(sku=x.sku, quantity=x.quantity, reason=x.reason) for x in lines],
        created_at=created_at,
    )
    data = c.InboundOrderReceived(**_inbound_fields(order), receipt=receipt)
    return _inbound_event(order, c.INBOUND_ORDER_RECEIVED, data)


def _inbound_event(order: InboundOrder, type_: str, data: BaseModel) -> Keyed:
    event = c.make_event(
        source=SOURCE,
        type=type_,
        tenant_id=order.tenant_id,
        subject=f"inbound-order/{order.id}",
        data=data,
    )
    return c.inbound_order_key(order.tenant_id, order.id), event


def _sale_event(tenant_id: UUID, sale: UUID, type_: str, data: BaseModel) -> Keyed:
    event = c.make_event(
        source=SOURCE, type=type_, tenant_id=tenant_id, subject=f"sale/{sale}", data=data
    )
    return c.sale_key(tenant_id, sale), event


def _level_event(
    tenant_id: UUID, location_id: str, sku: str, record_id: UUID, type_: str, data: BaseModel
) -> Keyed:
    event = c.make_event(
        source=SOURCE,
        type=type_,
        tenant_id=tenant_id,
        subject=f"stock-record/{record_id}",
        data=data,
    )
    return c.stock_level_key(tenant_id, location_id, sku), event
