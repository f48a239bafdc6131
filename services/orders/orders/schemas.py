"""Request and response bodies of the sales API."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from fulfilkit.models import Code, Int, JsonObject, StrictModel, Text

MAX_LINES = 500
MAX_QUANTITY = 1_000_000


class ShopIn(StrictModel):
    channel: Annotated[Text, Field(min_length=1, max_length=64)]
    shop_name: Annotated[Text, Field(min_length=1, max_length=200)]


class LineIn(StrictModel):
    sku: Code
    quantity: Annotated[Int, Field(gt=0, le=MAX_QUANTITY)]


class SaleIn(StrictModel):
    sale_id: Code
    shop: ShopIn
    location_id: Code
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LINES)]
    customer: JsonObject | None = None
    shipping_address: JsonObject | None = None


class SalesIn(StrictModel):
    sales: Annotated[list[SaleIn], Field(min_length=1, max_length=100)]

    @field_validator("sales")
    @classmethod
    def each_sale_id_once(cls, sales: list[SaleIn]) -> list[SaleIn]:
        seen: set[str] = set()
        repeated = [s.sale_id for s in sales if s.sale_id in seen or seen.add(s.sale_id)]
        if repeated:
            raise ValueError(f"each sale_id may appear once; repeated: {sorted(set(repeated))}")
        return sales


class StatusHistoryEntry(BaseModel):
    from_status: str | None
    to_status: str
    reason: str | None
    actor: str
    at: datetime


class SaleOut(BaseModel):
    id: UUID
    sale_id: str
    status: str
    version: int
    shop: dict[str, Any]
    location_id: str
    lines: list[dict[str, Any]]
    customer: dict[str, Any] | None
    shipping_address: dict[str, Any] | None
    cancel_reason: str | None
    reservation: dict[str, Any] | None
    fulfillments: list[dict[str, Any]]
    status_history: list[StatusHistoryEntry] = []
    created_at: datetime
    updated_at: datetime


class CreateError(BaseModel):
    sale_id: str
    code: Literal["duplicated"]
    detail: str


class SalesOut(BaseModel):
    sales: list[SaleOut]  # in the order asked for, without those in errors
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


class ShipError(BaseModel):
    sale_id: str
    code: Literal["not_found", "conflict"]
    detail: str
    sale_status: str | None = None


class ShipOut(BaseModel):
    shipped: list[str]  # sale_ids now shipped (or already shipped or delivered)
    errors: list[ShipError]


class CancelIn(StrictModel):
    sale_id: Code
    cancel_reason: Literal["out_of_stock", "customer_request", "other"]


class CancelOut(BaseModel):
    id: UUID
    sale_id: str
    status: Literal["canceled"]
