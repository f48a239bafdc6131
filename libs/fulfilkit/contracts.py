"""Event types, their topics, partition keys and versioned data models.

Every event's `data` is the full snapshot of the entity after the change plus what changed.
Bump `dataversion` on the envelope when a model changes incompatibly.
"""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from fulfilkit.events import CloudEvent

SALES_TOPIC = "sales.events"
STOCK_TOPIC = "stock.events"
FULFILLMENT_TOPIC = "fulfillment.events"
WEBHOOKS_TOPIC = "webhooks.events"
DOMAIN_TOPICS = (SALES_TOPIC, STOCK_TOPIC, FULFILLMENT_TOPIC, WEBHOOKS_TOPIC)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


ALL_TOPICS = DOMAIN_TOPICS + tuple(dlq_topic(t) for t in DOMAIN_TOPICS)

SALE_CREATED = "sale.created"
SALE_STATUS_CHANGED = "sale.status_changed"
SALE_CANCELED = "sale.canceled"
STOCK_CHANGED = "stock.changed"
STOCK_LOW = "stock.low"
STOCK_RESERVED = "stock.reserved"
STOCK_RESERVATION_FAILED = "stock.reservation_failed"
STOCK_RELEASED = "stock.released"
STOCK_COMMITTED = "stock.committed"
FULFILLMENT_CREATED = "fulfillment.created"
FULFILLMENT_STATUS_CHANGED = "fulfillment.status_changed"
WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled"
PRODUCT_CREATED = "product.created"

TOPIC_OF_TYPE = {
    SALE_CREATED: SALES_TOPIC,
    SALE_STATUS_CHANGED: SALES_TOPIC,
    SALE_CANCELED: SALES_TOPIC,
    STOCK_CHANGED: STOCK_TOPIC,
    STOCK_LOW: STOCK_TOPIC,
    STOCK_RESERVED: STOCK_TOPIC,
    STOCK_RESERVATION_FAILED: STOCK_TOPIC,
    STOCK_RELEASED: STOCK_TOPIC,
    STOCK_COMMITTED: STOCK_TOPIC,
    FULFILLMENT_CREATED: FULFILLMENT_TOPIC,
    FULFILLMENT_STATUS_CHANGED: FULFILLMENT_TOPIC,
    WEBHOOK_ENDPOINT_DISABLED: WEBHOOKS_TOPIC,
    PRODUCT_CREATED: STOCK_TOPIC,
}
EVENT_TYPES = tuple(TOPIC_OF_TYPE)
# The `source` of every event on a topic: the one service that publishes there.
SOURCE_OF_TOPIC = {
    SALES_TOPIC: "/orders",
    STOCK_TOPIC: "/stock",
    FULFILLMENT_TOPIC: "/fulfilment",
    WEBHOOKS_TOPIC: "webhooks",
}

SaleStatus = Literal[
    "awaiting_stock", "pending", "backordered", "in_fulfillment", "shipped", "delivered", "canceled"
]
FulfillmentStatus = Literal[
    "waiting_for_picking", "picking", "packed", "shipped", "delivered", "canceled"
]
ReservationStatus = Literal["active", "committed", "released"]


class Shop(BaseModel):
    channel: str
    shop_name: str


class SaleLine(BaseModel):
    sku: str
    quantity: int


class SaleSnapshot(BaseModel):
    id: UUID
    sale_id: str
    status: SaleStatus
    version: int
    shop: Shop
    location_id: str
    lines: list[SaleLine]
    customer: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    cancel_reason: str | None = None
    reservation: dict[str, Any] | None = None
    fulfillments: list[dict[str, Any]] = []
    created_at: datetime
    updated_at: datetime


class SaleStatusChanged(SaleSnapshot):
    previous_status: SaleStatus
    reason: str | None = None


class StockRecordSnapshot(BaseModel):
    id: UUID
    location_id: str
    sku: str
    quantity: int
    reserved: int
    available: int
    version: int
    updated_at: datetime


class StockChanged(StockRecordSnapshot):
    quantity_change: int
    reserved_change: int
    reason: str
    reference: str | None = None


class StockLow(StockRecordSnapshot):
    min_level: int


class ReservationLine(BaseModel):
    sku: str
    quantity: int
    stock_record_id: UUID
    is_bulky: bool = False


class ReservationSnapshot(BaseModel):
    id: UUID
    sale: UUID
    sale_id: str
    location_id: str
    status: ReservationStatus
    lines: list[ReservationLine]
    version: int
    updated_at: datetime


class Shortfall(BaseModel):
    sku: str
    requested: int
    available: int
    reason: Literal["insufficient_stock", "unknown_sku", "unknown_location"]


class ReservationFailed(BaseModel):
    sale: UUID
    sale_id: str
    location_id: str
    shortfalls: list[Shortfall]


class FulfillmentSnapshot(BaseModel):
    id: UUID
    fulfillment_id: str
    sale: UUID
    sale_id: str
    location: str
    status: FulfillmentStatus
    shipping_provider: str
    tracking_number: str
    is_bulky: bool
    date_created: datetime
    version: int


class FulfillmentStatusChanged(FulfillmentSnapshot):
    previous_status: FulfillmentStatus


class ProductSnapshot(BaseModel):
    """A product of the tenant's catalogue (stock's `/products`), as created."""

    sku: str
    name: str
    ean: str | None = None
    unit_type: str
    min_level: int
    is_bulky: bool
    version: int
    created_at: datetime
    updated_at: datetime


class EndpointDisabled(BaseModel):
    """A webhook endpoint's snapshot after it was disabled (secrets and custom headers,
    which may carry credentials, are left out), plus why."""

    id: UUID
    url: str
    description: str
    event_types: list[str]
    ordered: bool
    enabled: bool
    disabled_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    reason: str


DATA_MODEL_OF_TYPE: dict[str, type[BaseModel]] = {
    SALE_CREATED: SaleSnapshot,
    SALE_STATUS_CHANGED: SaleStatusChanged,
    SALE_CANCELED: SaleStatusChanged,
    STOCK_CHANGED: StockChanged,
    STOCK_LOW: StockLow,
    STOCK_RESERVED: ReservationSnapshot,
    STOCK_RESERVATION_FAILED: ReservationFailed,
    STOCK_RELEASED: ReservationSnapshot,
    STOCK_COMMITTED: ReservationSnapshot,
    FULFILLMENT_CREATED: FulfillmentSnapshot,
    FULFILLMENT_STATUS_CHANGED: FulfillmentStatusChanged,
    WEBHOOK_ENDPOINT_DISABLED: EndpointDisabled,
    PRODUCT_CREATED: ProductSnapshot,
}
# What the partition key of each event type's records is made of (all events of one entity
# on one partition, in order); the `*_key` functions below build them.
SALE_KEY = "`<tenant id>:sale:<sale uuid>`"
STOCK_LEVEL_KEY = "`<tenant id>:stock:<location_id>:<sku>`"
ENDPOINT_KEY = "`<tenant id>:webhook_endpoint:<endpoint uuid>`"
PRODUCT_KEY = "`<tenant id>:product:<sku>`"
KEY_OF_TYPE = {
    **{event_type: SALE_KEY for event_type in TOPIC_OF_TYPE},
    STOCK_CHANGED: STOCK_LEVEL_KEY,
    STOCK_LOW: STOCK_LEVEL_KEY,
    WEBHOOK_ENDPOINT_DISABLED: ENDPOINT_KEY,
    PRODUCT_CREATED: PRODUCT_KEY,
}


def sale_key(tenant_id: UUID, sale: UUID) -> str:
    return f"{tenant_id}:sale:{sale}"


def stock_level_key(tenant_id: UUID, location_id: str, sku: str) -> str:
    return f"{tenant_id}:stock:{location_id}:{sku}"


def product_key(tenant_id: UUID, sku: str) -> str:
    return f"{tenant_id}:product:{sku}"


def make_event(
    *, source: str, type: str, tenant_id: UUID, subject: str, data: BaseModel
) -> CloudEvent:
    if type not in TOPIC_OF_TYPE:
        raise ValueError(f"unknown event type {type!r}")
    if not isinstance(data, DATA_MODEL_OF_TYPE[type]):  # what the AsyncAPI document promises
        raise TypeError(
            f"{type} carries {DATA_MODEL_OF_TYPE[type].__name__}, not {data.__class__.__name__}"
        )
    return CloudEvent(
        source=source,
        type=type,
        tenantid=tenant_id,
        subject=subject,
        data=data.model_dump(mode="json"),
    )
