"""Request and response bodies of the stock API."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from fulfilkit.models import Bool, Code, Int, JsonObject, StrictModel, Text

Name = Annotated[Text, Field(min_length=1, max_length=200)]
UnitType = Annotated[Text, Field(min_length=1, max_length=32)]
MinLevel = Annotated[Int, Field(ge=0, le=1_000_000_000)]
Quantity = Annotated[Int, Field(ge=0, le=2_000_000_000)]
Ean = Annotated[str, Field(pattern=r"^[0-9]{8,14}$")]


class ProductIn(StrictModel):
    sku: Code
    name: Name
    ean: Ean | None = None
    unit_type: UnitType = "unit"
    min_level: MinLevel = 0
    is_bulky: Bool = False


# In patches a field left out is left alone. Only nullable columns accept an explicit null:
# the others default to None without being typed as optional, so `null` is a 422.
class ProductPatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    ean: Ean | None = None
    unit_type: UnitType = None  # type: ignore[assignment]
    min_level: MinLevel = None  # type: ignore[assignment]
    is_bulky: Bool = None  # type: ignore[assignment]


class Product(BaseModel):
    sku: str
    name: str
    ean: str | None
    unit_type: str
    min_level: int
    is_bulky: bool
    version: int
    created_at: datetime
    updated_at: datetime


class LocationIn(StrictModel):
    location_id: Code
    name: Name
    address: JsonObject | None = None


class Location(BaseModel):
    location_id: str
    name: str
    address: dict[str, Any] | None
    version: int
    created_at: datetime


class StockRecordIn(StrictModel):
    location_id: Code
    sku: Code
    quantity: Quantity = 0


class StockRecordOut(BaseModel):
    id: UUID
    location_id: str
    sku: str
    quantity: int
    reserved: int
    available: int
    version: int
    updated_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> "StockRecordOut":
        return cls(**row, available=row["quantity"] - row["reserved"])


class LocationPatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    address: JsonObject | None = None


Notes = Annotated[Text, Field(max_length=1000)]


class RecordUpdate(StrictModel):
    id: UUID
    quantity: Quantity
    compare_quantity: Annotated[Int, Field(ge=0, le=2_000_000_000)] | None = None
    version: Annotated[Int, Field(ge=1, le=2**31 - 1)] | None = None


class RecordsUpdateIn(StrictModel):
    stock_records: Annotated[list[RecordUpdate], Field(min_length=1, max_length=1000)]
    notes: Notes | None = None


class RecordChange(StrictModel):
    id: UUID
    quantity_change: Annotated[Int, Field(ge=-2_000_000_000, le=2_000_000_000)]


class RecordsChangeIn(StrictModel):
    stock_records: Annotated[list[RecordChange], Field(min_length=1, max_length=1000)]
    notes: Notes | None = None


class RecordsOut(BaseModel):
    stock_records: list[StockRecordOut]


class LevelUpdateIn(StrictModel):
    sku: Code
    location_id: Code
    quantity: Quantity
    update_type: Literal["audit", "restock", "loss"]
    notes: Notes | None = None


class TransferIn(StrictModel):
    sku: Code
    from_location_id: Code
    to_location_id: Code
    quantity: Annotated[Int, Field(gt=0, le=2_000_000_000)]
    notes: Notes | None = None


class TransferOut(BaseModel):
    transfer_id: str
    source: StockRecordOut = Field(serialization_alias="from")
    destination: StockRecordOut = Field(serialization_alias="to")


class Movement(BaseModel):
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


class DiscrepancyOut(BaseModel):
    stock_record_id: UUID
    location_id: str
    sku: str
    check: str
    recorded: int
    expected: int


class IntegrityReport(BaseModel):
    ok: bool
    records_checked: int
    discrepancies: list[DiscrepancyOut]
    repaired: int = 0
