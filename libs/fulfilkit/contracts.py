"""Event types, their topics, partition keys and versioned data models.

Every event's `data` is the full snapshot of the entity after the change plus what changed.
When a type's model changes incompatibly (a field changes type, or goes), its version in
`DATA_VERSION_OF_TYPE` goes up (the envelope's `dataversion`), and the model it replaces
stays in `EARLIER_DATA_MODELS`, so that records published before the change (still on the
topic, or replayed from a dead letter) are still read. Adding a field is not a new version.
"""

from datetime import datetime
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from fulfilkit.events import CloudEvent, Encoded, encode

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
SALE_UPDATED = "sale.updated"
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
RETURN_CREATED = "return.created"
RETURN_STATUS_CHANGED = "return.status_changed"
INBOUND_ORDER_CREATED = "inbound_order.created"
INBOUND_ORDER_STATUS_CHANGED = "inbound_order.status_changed"
INBOUND_ORDER_RECEIVED = "inbound_order.received"

TOPIC_OF_TYPE = {
    SALE_CREATED: SALES_TOPIC,
    SALE_STATUS_CHANGED: SALES_TOPIC,
    SALE_CANCELED: SALES_TOPIC,
    SALE_UPDATED: SALES_TOPIC,
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
    # a sale's returns: on the sales topic, keyed by their sale, so they stay in order with it
    RETURN_CREATED: SALES_TOPIC,
    RETURN_STATUS_CHANGED: SALES_TOPIC,
    INBOUND_ORDER_CREATED: STOCK_TOPIC,
    INBOUND_ORDER_STATUS_CHANGED: STOCK_TOPIC,
    INBOUND_ORDER_RECEIVED: STOCK_TOPIC,
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


# Shop ids are derived, not registered: the same channel and shop name always give the same
# id, in every service and in every event ever published, without a lookup or a write.
SHOP_ID_NAMESPACE = UUID("6f1c1f4e-5b8a-4c59-9d0e-3b1f5f3f8a10")


@lru_cache(maxsize=4096)  # a tenant has few shops and every sale names one: hashed once each
def shop_id(channel: str, shop_name: str) -> UUID:
    """The stable id of the shop called `shop_name` on `channel` (UUIDv5 of both names)."""
    return uuid5(SHOP_ID_NAMESPACE, f"{channel}\n{shop_name}")


class Shop(BaseModel):
    """A sale's shop. `id` is `shop_id(channel, shop_name)`, set by every producer; it is
    absent only from records published before shops had ids."""

    id: UUID | None = None
    channel: str
    shop_name: str

    @classmethod
    def named(cls, channel: str, shop_name: str) -> "Shop":
        return cls(id=shop_id(channel, shop_name), channel=channel, shop_name=shop_name)


class SaleLine(BaseModel):
    sku: str
    quantity: int
    # the line's custom properties; absent (not null) when the sale gave none, so that a
    # line is published as it was before properties existed
    properties: dict[str, str | int | float | bool] | None = None

    @model_serializer(mode="wrap")
    def _without_absent_properties(self, handler: SerializerFunctionWrapHandler) -> Any:
        dumped = handler(self)
        if isinstance(dumped, dict) and dumped.get("properties") is None:
            dumped.pop("properties", None)
        return dumped


class Money(BaseModel):
    """An amount (a decimal number written as a string) in an ISO 4217 currency."""

    amount: str
    currency: str


class RequiredDates(BaseModel):
    ship_by: datetime | None = None
    deliver_by: datetime | None = None


class ShippedPart(BaseModel):
    """A part of a sale that has left: what one location of its reservation shipped."""

    location_id: str
    shipped_at: datetime


class SaleSnapshot(BaseModel):
    """A sale (data version 2: `location_id` may be null, for a sale routed by stock; in
    version 1 it was always the location the client named)."""

    id: UUID
    sale_id: str
    status: SaleStatus
    version: int
    shop: Shop
    location_id: str | None
    lines: list[SaleLine]
    customer: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    cancel_reason: str | None = None
    reservation: dict[str, Any] | None = None
    fulfillments: list[dict[str, Any]] = []
    created_at: datetime
    updated_at: datetime
    # the optional details (docs/api-guide.md, "Order details"); added without a new
    # dataversion: a reader that does not know them ignores them
    priority: Literal["normal", "urgent"] = "normal"
    instructions: str | None = None
    required_dates: RequiredDates | None = None
    invoice_value: Money | None = None
    cash_on_delivery: Money | None = None
    properties: dict[str, str | int | float | bool] | None = None
    # added: whether stock may split the sale across locations when it routes it (a sale
    # without `location_id`); where the sale ships from is in its `reservation`
    allow_split: bool = True
    # added (additive): the parts of the sale that have shipped, one per location of its
    # reservation, in the order they shipped; the sale is `shipped` once every location
    # has. Left out while none has.
    shipped_parts: list[ShippedPart] = Field([], exclude_if=lambda v: not v)


class SaleStatusChanged(SaleSnapshot):
    previous_status: SaleStatus
    reason: str | None = None


class SaleUpdated(SaleSnapshot):
    """A sale after an edit (`PATCH /sales/{sale_id}`): `changed` names the top-level fields
    the edit changed (`lines`, `shipping_address`, `location_id`, ...)."""

    previous_status: SaleStatus
    changed: list[str]


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
    # added (additive): the location the units are at, given only when it is not the
    # reservation's `location_id` (a line of a split sale's other part)
    location_id: str | None = Field(None, exclude_if=lambda v: v is None)


class ReservationLocation(BaseModel):
    """The location a reservation's units are at, as it was when the event was published:
    its name and free-form address. Shipping labels print it as their sender."""

    name: str
    address: dict[str, Any] | None = None


class ReservationPlace(BaseModel):
    """One more location a split sale's reservation holds units at."""

    location_id: str
    location: ReservationLocation | None = None


class ReservationSnapshot(BaseModel):
    id: UUID
    sale: UUID
    sale_id: str
    location_id: str
    # added in data version 1 (additive): absent from events published before, and None when
    # the location is not in the catalogue
    location: ReservationLocation | None = None
    status: ReservationStatus
    lines: list[ReservationLine]
    version: int
    updated_at: datetime
    # added (additive): for a sale split across locations, the locations other than
    # `location_id` that some lines are at (each line names its own); left out otherwise
    other_locations: list[ReservationPlace] = Field([], exclude_if=lambda v: not v)
    # added (additive): the sale's version this reservation answers (its creation's, or its
    # last edit's); absent from events published before
    sale_version: int | None = None


class Preorder(BaseModel):
    """A product's pre-order terms: when more is expected, and how many days it takes."""

    expected_at: datetime | None = None
    lead_time_days: int | None = None


class Shortfall(BaseModel):
    sku: str
    requested: int
    available: int  # what the sale could take: available less the product's threshold
    # `backorder_denied` (added, additive): the product's backorder policy refuses the sale
    # (`deny`, or its cap would be passed); the sale is not queued and nothing is reserved
    reason: Literal["insufficient_stock", "unknown_sku", "unknown_location", "backorder_denied"]
    # added (additive): the product's pre-order terms, left out when it has none
    preorder: Preorder | None = Field(None, exclude_if=lambda v: v is None)
    # added (additive): when the first open inbound order at the sale's location whose
    # incoming units would fill the line is expected, left out when none would
    expected_at: datetime | None = Field(None, exclude_if=lambda v: v is None)


class ReservationFailed(BaseModel):
    """Why a sale could not be reserved (data version 2: `location_id`, where the sale waits,
    is null when the tenant has no location to route it to)."""

    sale: UUID
    sale_id: str
    location_id: str | None
    shortfalls: list[Shortfall]
    # added (additive): the sale's version this outcome answers
    sale_version: int | None = None


class FulfillmentShop(BaseModel):
    id: UUID
    channel: str
    shop_name: str


class FulfillmentSale(BaseModel):
    """The sale a fulfillment ships, as the fulfillment shows it. `status` is the sale's
    status that the fulfillment's own status implies (`in_fulfillment` until shipped, then
    `shipped`, `delivered`, or `canceled` with it)."""

    id: UUID
    shop: FulfillmentShop
    sale_id: str
    date_created: datetime
    status: SaleStatus


class FulfillmentLocation(BaseModel):
    name: str
    location_id: str


class ShippingProvider(BaseModel):
    name: str  # for people: "Fulfil Post"
    shipping_provider_id: str  # for programs: "fulfil-post"


class FulfillmentSnapshot(BaseModel):
    """A fulfillment (data version 2): `sale`, `location` and `shipping_provider` are
    objects; version 1 had the sale's uuid and the two codes as strings. `sale_id` (the
    sale's, also in `sale`) and `version` are the platform's own, beside the common shape."""

    id: UUID
    sale: FulfillmentSale
    location: FulfillmentLocation
    fulfillment_id: str
    status: FulfillmentStatus
    shipping_provider: ShippingProvider
    tracking_number: str
    date_created: datetime
    is_bulky: bool
    sale_id: str
    version: int


class FulfillmentStatusChanged(FulfillmentSnapshot):
    previous_status: FulfillmentStatus


class FulfillmentSnapshotV1(BaseModel):
    """A fulfillment as data version 1 carried it, read only: nothing publishes it now."""

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


class FulfillmentStatusChangedV1(FulfillmentSnapshotV1):
    previous_status: FulfillmentStatus


class BundleComponent(BaseModel):
    """One component of a bundle: units of `sku` per bundle."""

    sku: str
    quantity: int


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
    # stock policies (added, additive; absent from events published before)
    backorders: Literal["allow", "deny"] | dict[str, int] = "allow"
    out_of_stock_threshold: int = 0
    preorder: Preorder | None = None
    infinite: bool = False
    # a bundle's (added, additive): its components ([{sku, quantity}]) and whether it is
    # assembled into stock of its own
    components: list[BundleComponent] | None = None
    assembled: bool = False


ReturnStatus = Literal["requested", "received", "closed", "canceled"]
ReturnReason = Literal["damaged", "wrong_item", "no_longer_needed", "other"]


class ReturnLine(BaseModel):
    sku: str
    quantity: int


class ReturnReceivedLine(BaseModel):
    """What came back of a returned SKU and what becomes of it: `restock` makes it sellable
    again at `location_id`, `discard` records it (inspected at `location_id`) without."""

    sku: str
    quantity: int
    disposition: Literal["restock", "discard"]
    location_id: str


class ReturnSnapshot(BaseModel):
    """A return of a shipped sale's units. `sale` is the sale's platform id (its events are
    keyed by it), `sale_id` the client's; `received_lines` are empty until it is received."""

    id: UUID
    sale: UUID
    sale_id: str
    status: ReturnStatus
    version: int
    reason: ReturnReason
    lines: list[ReturnLine]
    received_lines: list[ReturnReceivedLine] = []
    created_at: datetime
    updated_at: datetime
    received_at: datetime | None = None
    closed_at: datetime | None = None
    canceled_at: datetime | None = None


class ReturnStatusChanged(ReturnSnapshot):
    previous_status: ReturnStatus


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


InboundOrderStatus = Literal["draft", "open", "receiving", "received", "closed", "canceled"]


class InboundOrderLine(BaseModel):
    sku: str
    quantity: int  # expected
    received: int


class InboundOrderSnapshot(BaseModel):
    """A delivery expected from a supplier at a location (stock's `/inbound-orders`)."""

    id: UUID
    reference: str
    supplier: str | None
    location_id: str
    expected_at: datetime | None
    urgent: bool
    instructions: str | None
    properties: dict[str, str | int | float | bool] | None
    status: InboundOrderStatus
    close_reason: str | None
    lines: list[InboundOrderLine]
    version: int
    created_at: datetime
    updated_at: datetime


class InboundOrderStatusChanged(InboundOrderSnapshot):
    previous_status: InboundOrderStatus


class ReceiptLine(BaseModel):
    sku: str
    quantity: int
    reason: str | None = None


class Receipt(BaseModel):
    id: UUID
    lines: list[ReceiptLine]
    created_at: datetime


class InboundOrderReceived(InboundOrderSnapshot):
    """The inbound order after a receipt, and the receipt."""

    receipt: Receipt


DATA_MODEL_OF_TYPE: dict[str, type[BaseModel]] = {
    SALE_CREATED: SaleSnapshot,
    SALE_STATUS_CHANGED: SaleStatusChanged,
    SALE_CANCELED: SaleStatusChanged,
    SALE_UPDATED: SaleUpdated,
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
    RETURN_CREATED: ReturnSnapshot,
    RETURN_STATUS_CHANGED: ReturnStatusChanged,
    INBOUND_ORDER_CREATED: InboundOrderSnapshot,
    INBOUND_ORDER_STATUS_CHANGED: InboundOrderStatusChanged,
    INBOUND_ORDER_RECEIVED: InboundOrderReceived,
}
# The `dataversion` of each type's events; a type not listed is at version "1".
DATA_VERSION_OF_TYPE = {
    # version 2 widened a field to nullable: the current model reads version 1 as it is
    SALE_CREATED: "2",
    SALE_STATUS_CHANGED: "2",
    SALE_CANCELED: "2",
    STOCK_RESERVATION_FAILED: "2",
    FULFILLMENT_CREATED: "2",
    FULFILLMENT_STATUS_CHANGED: "2",
}


def data_version(event_type: str) -> str:
    return DATA_VERSION_OF_TYPE.get(event_type, "1")


# Models of earlier data versions that consumers still read, by (type, dataversion).
EARLIER_DATA_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    (FULFILLMENT_CREATED, "1"): FulfillmentSnapshotV1,
    (FULFILLMENT_STATUS_CHANGED, "1"): FulfillmentStatusChangedV1,
}


def sale_of(data: BaseModel) -> UUID:
    """The uuid of the sale an event of a sale's key is about, whatever its data version."""
    sale = getattr(data, "sale", None)
    if isinstance(sale, FulfillmentSale):
        return sale.id
    if isinstance(sale, UUID):
        return sale
    return data.id  # type: ignore[attr-defined, no-any-return]  # the sale's own events


# What the partition key of each event type's records is made of (all events of one entity
# on one partition, in order); the `*_key` functions below build them.
SALE_KEY = "`<tenant id>:sale:<sale uuid>`"
STOCK_LEVEL_KEY = "`<tenant id>:stock:<location_id>:<sku>`"
ENDPOINT_KEY = "`<tenant id>:webhook_endpoint:<endpoint uuid>`"
PRODUCT_KEY = "`<tenant id>:product:<sku>`"
INBOUND_ORDER_KEY = "`<tenant id>:inbound_order:<inbound order uuid>`"
KEY_OF_TYPE = {
    **{event_type: SALE_KEY for event_type in TOPIC_OF_TYPE},
    STOCK_CHANGED: STOCK_LEVEL_KEY,
    STOCK_LOW: STOCK_LEVEL_KEY,
    WEBHOOK_ENDPOINT_DISABLED: ENDPOINT_KEY,
    PRODUCT_CREATED: PRODUCT_KEY,
    INBOUND_ORDER_CREATED: INBOUND_ORDER_KEY,
    INBOUND_ORDER_STATUS_CHANGED: INBOUND_ORDER_KEY,
    INBOUND_ORDER_RECEIVED: INBOUND_ORDER_KEY,
}


def sale_key(tenant_id: UUID, sale: UUID) -> str:
    return f"{tenant_id}:sale:{sale}"


def stock_level_key(tenant_id: UUID, location_id: str, sku: str) -> str:
    return f"{tenant_id}:stock:{location_id}:{sku}"


def product_key(tenant_id: UUID, sku: str) -> str:
    return f"{tenant_id}:product:{sku}"


def inbound_order_key(tenant_id: UUID, inbound_order: UUID) -> str:
    return f"{tenant_id}:inbound_order:{inbound_order}"


def _check_data(type: str, data: BaseModel) -> None:
    if type not in TOPIC_OF_TYPE:
        raise ValueError(f"unknown event type {type!r}")
    if not isinstance(data, DATA_MODEL_OF_TYPE[type]):  # what the AsyncAPI document promises
        raise TypeError(
            f"{type} carries {DATA_MODEL_OF_TYPE[type].__name__}, not {data.__class__.__name__}"
        )


def make_event(
    *, source: str, type: str, tenant_id: UUID, subject: str, data: BaseModel
) -> CloudEvent:
    _check_data(type, data)
    return CloudEvent(
        source=source,
        type=type,
        tenantid=tenant_id,
        subject=subject,
        dataversion=data_version(type),
        data=data.model_dump(mode="json"),
    )


def encode_event(
    *, source: str, type: str, tenant_id: UUID, subject: str, data: BaseModel
) -> Encoded:
    """`make_event(...)` straight to the bytes its `to_bytes()` gives, for events written to
    an outbox and never read back as a model (`fulfilkit.events.encode`)."""
    _check_data(type, data)
    return encode(
        source=source,
        type=type,
        tenant_id=tenant_id,
        subject=subject,
        dataversion=data_version(type),
        data=data,
    )
