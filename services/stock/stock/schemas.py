"""Request and response bodies of the stock API."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductIn(Strict):
    sku: Code
    name: Name
    ean: Annotated[str, Field(pattern=r"^[0-9]{8,14}$")] | None = None
    unit_type: Annotated[str, Field(min_length=1, max_length=32)] = "unit"
    min_level: Annotated[int, Field(ge=0)] = 0
    is_bulky: bool = False


class ProductPatch(Strict):
    name: Name | None = None
    ean: Annotated[str, Field(pattern=r"^[0-9]{8,14}$")] | None = None
    unit_type: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    min_level: Annotated[int, Field(ge=0)] | None = None
    is_bulky: bool | None = None


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


class LocationIn(Strict):
    location_id: Code
    name: Name
    address: dict[str, Any] | None = None


class Location(BaseModel):
    location_id: str
    name: str
    address: dict[str, Any] | None
    version: int
    created_at: datetime


class StockRecordIn(Strict):
    location_id: Code
    sku: Code
    quantity: Annotated[int, Field(ge=0, le=2_000_000_000)] = 0


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
