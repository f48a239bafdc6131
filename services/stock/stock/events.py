"""Turns stock outcomes into the platform's events (contracts in fulfilkit.contracts).

The events a reservation batch writes for every sale (`stock.changed`, `stock.reserved`,
`stock.released`, `stock.committed`) and `stock.low` are written straight to their JSON
(`Encoded`), in the contract's field order and with its serializer's formats, instead of
through their models and `CloudEvent`: building and dumping those cost about three quarters
of the time those events take. `tests/test_events.py` holds each to the bytes its models
give. The others, rarer, go through the models.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel

from fulfilkit import contracts as c
from fulfilkit.events import CloudEvent, utcnow
from stock.domain import LedgerEntry, Place, Product, Reservation, ReservationFailed, StockRecord
from stock.inbound import InboundOrder, ReceiptLine

SOURCE = "/stock"
RESERVATION_TYPES = {
    "active": c.STOCK_RESERVED,
    "released": c.STOCK_RELEASED,
    "committed": c.STOCK_COMMITTED,
}


@dataclass(frozen=True, slots=True)
class Encoded:
    """An event already in its wire form: the bytes `CloudEvent.to_bytes()` would give, with
    the id and type the outbox keeps beside them."""

    id: UUID
    type: str
    payload: bytes

    def to_bytes(self) -> bytes:
        return self.payload


# What the outbox takes: the Kafka key and the event, encoded or as a model.
Outgoing = tuple[str, CloudEvent | Encoded]


def _encoded(type_: str, tenant_id: UUID, subject: str, data: dict[str, Any]) -> Encoded:
    """The CloudEvent envelope around `data` (its fields in the contract's order), as JSON
    the way `CloudEvent.to_bytes()` writes it (orjson, after pydantic's JSON mode: UTC as
    `Z`, microseconds only when there are some)."""
    event_id = uuid4()
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": type_,
        "time": utcnow(),
        "subject": subject,
        "datacontenttype": "application/json",
        "dataversion": c.data_version(type_),
        "tenantid": tenant_id,
        "data": data,
    }
    return Encoded(event_id, type_, orjson.dumps(envelope, default=_uuid, option=orjson.OPT_UTC_Z))


def _uuid(value: object) -> str:
    """A UUID of a subclass orjson does not take as one (asyncpg's, read from a row)."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def stock_changed(entry: LedgerEntry) -> Outgoing:
    data = {
        "id": entry.record_id,
        "location_id": entry.location_id,
        "sku": entry.sku,
        "quantity": entry.quantity_after,
        "reserved": entry.reserved_after,
        "available": entry.quantity_after - entry.reserved_after,
        "version": entry.version_after,
        "updated_at": utcnow(),
        "quantity_change": entry.quantity_change,
        "reserved_change": entry.reserved_change,
        "reason": entry.reason,
        "reference": entry.reference,
    }
    return (
        c.stock_level_key(entry.tenant_id, entry.location_id, entry.sku),
        _encoded(c.STOCK_CHANGED, entry.tenant_id, f"stock-record/{entry.record_id}", data),
    )


def product_created(tenant_id: UUID, product: Product) -> Outgoing:
    """The catalogue's new SKU, for those who keep a copy of the catalogue (orders)."""
    event = c.make_event(
        source=SOURCE,
        type=c.PRODUCT_CREATED,
        tenant_id=tenant_id,
        subject=f"product/{product.sku}",
        data=c.ProductSnapshot(**vars(product)),
    )
    return c.product_key(tenant_id, product.sku), event


def stock_low(record: StockRecord) -> Outgoing:
    data = {
        "id": record.id,
        "location_id": record.location_id,
        "sku": record.sku,
        "quantity": record.quantity,
        "reserved": record.reserved,
        "available": record.available,
        "version": record.version,
        "updated_at": utcnow(),
        "min_level": record.min_level,
    }
    return (
        c.stock_level_key(record.tenant_id, record.location_id, record.sku),
        _encoded(c.STOCK_LOW, record.tenant_id, f"stock-record/{record.id}", data),
    )


def _location(place: Place | None) -> dict[str, Any] | None:
    """`ReservationLocation`."""
    return None if place is None else {"name": place.name, "address": place.address}


def reservation(
    row: Reservation,
    bulky: Collection[UUID] = (),
    place: Place | None = None,
    elsewhere: Sequence[tuple[str, Place | None]] = (),
) -> Outgoing:
    """stock.reserved, stock.released or stock.committed, after the reservation's status
    (`ReservationSnapshot`).

    `bulky` holds the ids of stock records whose product is bulky, and `place` the name and
    address of the location, for shipping's sake (a label's sender); `elsewhere` the other
    locations a split sale's lines are at, with theirs.
    """
    lines = []
    for sku, quantity, record_id in row.lines:
        line = {
            "sku": sku,
            "quantity": quantity,
            "stock_record_id": record_id,
            "is_bulky": record_id in bulky,
        }
        if (at := row.at.get(record_id)) is not None:  # left out when None
            line["location_id"] = at
        lines.append(line)
    data: dict[str, Any] = {
        "id": row.id,
        "sale": row.sale,
        "sale_id": row.sale_id,
        "location_id": row.location_id,
        "location": _location(place),
        "status": row.status,
        "lines": lines,
        "version": row.version,
        "updated_at": utcnow(),
    }
    if elsewhere:  # left out when empty
        data["other_locations"] = [
            {"location_id": loc, "location": _location(p)} for loc, p in elsewhere
        ]
    data["sale_version"] = row.sale_version
    type_ = RESERVATION_TYPES[row.status]
    return (
        c.sale_key(row.tenant_id, row.sale),
        _encoded(type_, row.tenant_id, f"sale/{row.sale}", data),
    )


def reservation_failed(
    outcome: ReservationFailed, arrivals: Mapping[str, datetime] | None = None
) -> Outgoing:
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


def inbound_order_created(order: InboundOrder) -> Outgoing:
    return _inbound_event(
        order, c.INBOUND_ORDER_CREATED, c.InboundOrderSnapshot(**_inbound_fields(order))
    )


def inbound_order_status_changed(order: InboundOrder, previous_status: str) -> Outgoing:
    data = c.InboundOrderStatusChanged(
        **_inbound_fields(order),
        previous_status=previous_status,  # type: ignore[arg-type]
    )
    return _inbound_event(order, c.INBOUND_ORDER_STATUS_CHANGED, data)


def inbound_order_received(
    order: InboundOrder, receipt_id: UUID, lines: Sequence[ReceiptLine], created_at: datetime
) -> Outgoing:
    receipt = c.Receipt(
        id=receipt_id,
        lines=[c.ReceiptLine(sku=x.sku, quantity=x.quantity, reason=x.reason) for x in lines],
        created_at=created_at,
    )
    data = c.InboundOrderReceived(**_inbound_fields(order), receipt=receipt)
    return _inbound_event(order, c.INBOUND_ORDER_RECEIVED, data)


def _inbound_event(order: InboundOrder, type_: str, data: BaseModel) -> Outgoing:
    event = c.make_event(
        source=SOURCE,
        type=type_,
        tenant_id=order.tenant_id,
        subject=f"inbound-order/{order.id}",
        data=data,
    )
    return c.inbound_order_key(order.tenant_id, order.id), event


def _sale_event(tenant_id: UUID, sale: UUID, type_: str, data: BaseModel) -> Outgoing:
    event = c.make_event(
        source=SOURCE, type=type_, tenant_id=tenant_id, subject=f"sale/{sale}", data=data
    )
    return c.sale_key(tenant_id, sale), event
