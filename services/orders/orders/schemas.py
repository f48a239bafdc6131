"""Request and response bodies of the sales API."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, Field, field_validator, model_validator

from fulfilkit.models import Bool, Code, Int, JsonObject, StrictModel, Text
from orders.details import (
    MAX_INSTRUCTIONS,
    MAX_LINES_PROPERTIES_BYTES,
    Address,
    LineProperties,
    Money,
    Priority,
    RequiredDates,
    SaleProperties,
)

MAX_LINES = 500
MAX_QUANTITY = 1_000_000


class ShopIn(StrictModel):
    channel: Annotated[Text, Field(min_length=1, max_length=64)]
    shop_name: Annotated[Text, Field(min_length=1, max_length=200)]


class LineIn(StrictModel):
    sku: Code
    quantity: Annotated[Int, Field(gt=0, le=MAX_QUANTITY)]
    properties: LineProperties | None = None


class SaleIn(StrictModel):
    sale_id: Code
    shop: ShopIn
    location_id: Annotated[
        Code | None,
        Field(
            description="The location to reserve and ship from; left out (or null), stock"
            " routes the sale over the tenant's locations (see `allocations`)."
        ),
    ] = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LINES)]
    customer: JsonObject | None = None
    shipping_address: Address | None = None
    priority: Priority = "normal"
    instructions: Annotated[Text, Field(max_length=MAX_INSTRUCTIONS)] | None = None
    required_dates: RequiredDates | None = None
    invoice_value: Money | None = None
    cash_on_delivery: Money | None = None
    properties: SaleProperties | None = None
    allow_split: Annotated[
        Bool,
        Field(
            description="Whether a routed sale (no `location_id`) may be split across"
            " locations when no one location can fill it; false: it waits for one to."
        ),
    ] = True

    @field_validator("lines")
    @classmethod
    def _line_properties_fit(cls, lines: list[LineIn]) -> list[LineIn]:
        return _line_properties_fit(lines)


def _line_properties_fit(lines: list[LineIn]) -> list[LineIn]:
    size = sum(len(orjson.dumps(line.properties)) for line in lines if line.properties)
    if size > MAX_LINES_PROPERTIES_BYTES:
        raise ValueError(
            f"the lines' properties take {size} bytes as JSON together; at most"
            f" {MAX_LINES_PROPERTIES_BYTES}"
        )
    return lines


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# A field of an edit that may be left out but not be null: its schema has no `null` default.
_NOT_NULL = Field(json_schema_extra=_without_default)


class SaleEdit(StrictModel):
    """What `PATCH /sales/{sale_id}` changes: any of these fields, each validated as
    `POST /sales` validates it. A field left out keeps its value; `null` clears an optional
    one, and `location_id: null` has stock route the sale (`lines`, `allow_split` and
    `priority` cannot be null)."""

    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LINES), _NOT_NULL] = None  # type: ignore[assignment]
    location_id: Annotated[
        Code | None,
        Field(description="The location to reserve and ship from; null: stock routes the sale."),
    ] = None
    allow_split: Annotated[Bool, _NOT_NULL] = None  # type: ignore[assignment]
    customer: JsonObject | None = None
    shipping_address: Address | None = None
    priority: Annotated[Priority, _NOT_NULL] = None  # type: ignore[assignment]
    instructions: Annotated[Text, Field(max_length=MAX_INSTRUCTIONS)] | None = None
    required_dates: RequiredDates | None = None
    invoice_value: Money | None = None
    cash_on_delivery: Money | None = None
    properties: SaleProperties | None = None

    @field_validator("lines")
    @classmethod
    def _line_properties_fit(cls, lines: list[LineIn]) -> list[LineIn]:
        return _line_properties_fit(lines)


MAX_BATCH = 100


class SalesIn(StrictModel):
    # Each sale is validated on its own (`SaleIn`), so that one invalid sale is answered in
    # `errors` while the others are created.
    sales: Annotated[
        list[dict[str, Any]],
        Field(
            min_length=1,
            max_length=MAX_BATCH,
            description=(
                "Sales as `POST /sales` takes them. A sale that is not valid, or whose sale_id"
                " appears earlier in the batch, is answered in `errors`; the others are created."
            ),
        ),
    ]


class StatusHistoryEntry(BaseModel):
    from_status: str | None
    to_status: str
    reason: str | None
    actor: str
    at: datetime


class StockIssue(BaseModel):
    """A line of a sale created short of stock: what it asked for, what there was, why."""

    sku: str
    requested: int
    # at the sale's location when stock decided (sellable: less the threshold); for a routed
    # sale, at every location together (or at the waiting one, when it may not be split)
    available: int
    # backorder_denied: the product's backorders are denied (or capped): the sale is canceled
    reason: Literal["insufficient_stock", "unknown_location", "unknown_sku", "backorder_denied"]
    # the product's pre-order terms {expected_at, lead_time_days}; left out when it has none
    preorder: dict[str, Any] | None = Field(None, exclude_if=lambda v: v is None)
    # when the first inbound order expected at the location that would fill the line is
    # expected; left out when none would
    expected_at: datetime | None = Field(None, exclude_if=lambda v: v is None)


class AllocationLine(BaseModel):
    sku: str
    quantity: int


class Allocation(BaseModel):
    """The units of a sale reserved at one location."""

    location_id: str
    lines: list[AllocationLine]


class ShippedPart(BaseModel):
    """A part of a sale that has left: the units at one location of its reservation."""

    location_id: str
    shipped_at: datetime


class SaleOut(BaseModel):
    id: UUID
    sale_id: str
    status: str
    version: int
    shop: dict[str, Any]
    location_id: str | None = Field(
        description="The location the client named; null for a sale stock routes (where its"
        " units are reserved is `allocations`)."
    )
    allow_split: bool = True
    lines: list[dict[str, Any]]
    customer: dict[str, Any] | None
    shipping_address: dict[str, Any] | None
    priority: Priority = "normal"
    instructions: str | None = None
    required_dates: dict[str, Any] | None = None
    invoice_value: dict[str, Any] | None = None
    cash_on_delivery: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    cancel_reason: str | None
    reservation: dict[str, Any] | None
    fulfillments: list[dict[str, Any]]
    status_history: list[StatusHistoryEntry] = []
    created_at: datetime
    updated_at: datetime
    # while the sale is backordered, each line stock could not reserve (why `POST /sales`
    # answered 228); empty otherwise
    issues: list[StockIssue] = []
    allocations: list[Allocation] = Field(
        [],
        description="Where the sale's units are reserved: one entry per location, the"
        " reservation's own first. Empty while nothing is reserved (`awaiting_stock`,"
        " `backordered`) and once the reservation is released; a shipped sale keeps them.",
    )
    shipped_parts: list[ShippedPart] = Field(
        [],
        description="The parts of the sale that have shipped, one per location it ships from"
        " (`allocations`), in the order they shipped. A sale split across locations stays"
        " `in_fulfillment` until every location has shipped its part, and cannot be canceled"
        " once any has.",
    )
    returns: list["SaleReturn"] = Field(
        [],
        description="The sale's returns, oldest first (`/returns`): id, status, reason and"
        " lines. Shown by `GET /sales/{sale_id}` and `GET /sales`.",
    )


class FieldError(BaseModel):
    field: str  # a JSON pointer into the request body
    message: str


class CreateError(BaseModel):
    sale_id: str | None  # None when the sale has no valid sale_id
    index: int  # of the sale in the request
    code: Literal["duplicated", "validation"]
    detail: str
    errors: list[FieldError] = []


class SalesOut(BaseModel):
    # in the order asked for, without those in errors; each with its stock `issues`
    sales: list[SaleOut]
    errors: list[CreateError]


class SaleIdsIn(StrictModel):
    """The sales a claim or a shipment is about."""

    sale_ids: Annotated[list[Code], Field(min_length=1, max_length=100)]


class ClaimError(BaseModel):
    sale_id: str
    code: Literal["not_found", "invalid_status"]
    detail: str
    status: str | None = None


class ClaimOut(BaseModel):
    claimed: list[dict[str, Any]]
    errors: list[ClaimError]


class PartIn(StrictModel):
    """A part of a sale: its units at one location of its reservation."""

    sale_id: Code
    location_id: Code


class ShipIn(StrictModel):
    """What a shipment is about: whole sales (`sale_ids`, every part of each), or parts of
    sales (`parts`); one of the two."""

    sale_ids: Annotated[list[Code], Field(min_length=1, max_length=100)] | None = None
    parts: Annotated[list[PartIn], Field(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _one_of_the_two(self) -> "ShipIn":
        if (self.sale_ids is None) == (self.parts is None):
            raise ValueError("give either sale_ids or parts")
        return self


class ShipError(BaseModel):
    sale_id: str
    location_id: str | None = None  # the part refused, when parts were asked for
    code: Literal["not_found", "conflict"]
    detail: str
    sale_status: str | None = None


class ShipOut(BaseModel):
    # sale_ids whose part asked for shipped, now or before (the sale itself is shipped once
    # all of its parts are)
    shipped: list[str]
    errors: list[ShipError]


class CancelIn(StrictModel):
    sale_id: Code
    cancel_reason: Literal["out_of_stock", "customer_request", "other"]


class CancelOut(BaseModel):
    id: UUID
    sale_id: str
    status: Literal["canceled"]


# --- returns ("Returns" in docs/api-guide.md) -------------------------------------------------

ReturnReason = Literal["damaged", "wrong_item", "no_longer_needed", "other"]
ReturnStatus = Literal["requested", "received", "closed", "canceled"]


class ReturnLineIn(StrictModel):
    sku: Code
    quantity: Annotated[Int, Field(gt=0, le=MAX_QUANTITY)]


class ReturnIn(StrictModel):
    sale_id: Code
    reason: ReturnReason
    lines: Annotated[list[ReturnLineIn], Field(min_length=1, max_length=MAX_LINES)]


class ReceivedLineIn(StrictModel):
    sku: Code
    quantity: Annotated[Int, Field(gt=0, le=MAX_QUANTITY)]
    disposition: Annotated[
        Literal["restock", "discard"],
        Field(
            description="`restock`: sellable again at `location_id` (on-hand up, ledger"
            " reason `return`); `discard`: recorded (ledger reason `discard`, no quantity"
            " change) where it was inspected."
        ),
    ]
    location_id: Code


class ReceiveIn(StrictModel):
    lines: Annotated[list[ReceivedLineIn], Field(min_length=1, max_length=MAX_LINES)]


class ReturnLineOut(BaseModel):
    sku: str
    quantity: int


class ReceivedLineOut(BaseModel):
    sku: str
    quantity: int
    disposition: Literal["restock", "discard"]
    location_id: str


class ReturnOut(BaseModel):
    id: UUID
    sale_id: str
    status: ReturnStatus
    version: int
    reason: ReturnReason
    lines: list[ReturnLineOut]
    received_lines: list[ReceivedLineOut] = Field(
        [], description="What came back, with each line's disposition; empty until received."
    )
    created_at: datetime
    updated_at: datetime
    received_at: datetime | None = None
    closed_at: datetime | None = None
    canceled_at: datetime | None = None


class SaleReturn(BaseModel):
    """A return of the sale, as `GET /sales/{sale_id}` shows it (`GET /returns/{id}` has it
    all)."""

    id: UUID
    status: ReturnStatus
    reason: ReturnReason
    lines: list[ReturnLineOut]


SaleOut.model_rebuild()  # its `returns` are declared above SaleReturn
