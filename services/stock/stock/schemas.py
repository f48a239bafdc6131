"""Request and response bodies of the stock API, and how they map to the use cases."""

from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from fulfilkit.errors import Invalid
from fulfilkit.models import Bool, Code, Int, JsonObject, StrictModel, Text
from stock import domain
from stock.usecases.integrity import IntegrityCheck
from stock.usecases.levels import LevelChange, LevelUpdate, QuantityBasis, Transfer

MAX_FILTER_VALUES = 100  # values of one list filter (`sku=..&sku=..`)
CodeFilter = Annotated[list[Code] | None, Query(max_length=MAX_FILTER_VALUES)]
ReasonFilter = Annotated[list[domain.Reason] | None, Query(max_length=len(get_args(domain.Reason)))]
ReferenceFilter = Annotated[Text | None, Query(max_length=200)]

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
    model_config = ConfigDict(from_attributes=True)

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
    model_config = ConfigDict(from_attributes=True)

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
    def of(cls, record: domain.StockRecord) -> "StockRecordOut":
        return cls(
            id=record.id,
            location_id=record.location_id,
            sku=record.sku,
            quantity=record.quantity,
            reserved=record.reserved,
            available=record.available,
            version=record.version,
            updated_at=record.updated_at,
        )


class LocationPatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    address: JsonObject | None = None


Notes = Annotated[Text, Field(max_length=1000)]
Basis = Annotated[
    QuantityBasis,
    Field(
        description="What `quantity` counts: `on_hand` (the default: units at the location,"
        " reserved ones included) or `available` (units free to sell; the platform adds the"
        " open reservations to get on hand). `compare_quantity` is read on the same basis."
    ),
]


class RecordUpdate(StrictModel):
    id: UUID
    quantity: Quantity
    compare_quantity: Annotated[Int, Field(ge=0, le=2_000_000_000)] | None = None
    version: Annotated[Int, Field(ge=1, le=2**31 - 1)] | None = None


class RecordsUpdateIn(StrictModel):
    stock_records: Annotated[list[RecordUpdate], Field(min_length=1, max_length=1000)]
    quantity_basis: Basis = "on_hand"
    notes: Notes | None = None

    def updates(self, if_match: int | None) -> list[LevelUpdate]:
        """Counts that set each record's quantity; If-Match stands for the one record's
        `version`, so it may come only with a single record."""
        if if_match is not None and len(self.stock_records) != 1:
            raise Invalid(
                "If-Match applies to a single record.",
                errors=[
                    {
                        "field": "/stock_records",
                        "in": "body",
                        "message": "give `version` per record to update several;"
                        " If-Match names one",
                    }
                ],
            )
        return [
            LevelUpdate(
                r.quantity,
                "audit",
                record_id=r.id,
                compare_quantity=r.compare_quantity,
                version=r.version if r.version is not None else if_match,
                basis=self.quantity_basis,
                at=f"/stock_records/{i}",
            )
            for i, r in enumerate(self.stock_records)
        ]


class RecordChange(StrictModel):
    id: UUID
    quantity_change: Annotated[Int, Field(ge=-2_000_000_000, le=2_000_000_000)]


class RecordsChangeIn(StrictModel):
    stock_records: Annotated[list[RecordChange], Field(min_length=1, max_length=1000)]
    notes: Notes | None = None

    def changes(self) -> list[LevelChange]:
        return [
            LevelChange(r.id, r.quantity_change, at=f"/stock_records/{i}")
            for i, r in enumerate(self.stock_records)
        ]


class RecordsOut(BaseModel):
    stock_records: list[StockRecordOut]


class LevelUpdateIn(StrictModel):
    sku: Code
    location_id: Code
    quantity: Quantity
    update_type: Literal["audit", "restock", "loss"]
    quantity_basis: Basis = "on_hand"
    notes: Notes | None = None

    def update(self) -> LevelUpdate:
        """The body is the one update of a batch of one. A `restock` or a `loss` moves on hand
        and available alike, so only an `audit` reads the basis."""
        return LevelUpdate(
            self.quantity,
            self.update_type,
            location_id=self.location_id,
            sku=self.sku,
            basis=self.quantity_basis,
        )


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

    @classmethod
    def of(cls, transfer: Transfer) -> "TransferOut":
        return cls(
            transfer_id=transfer.transfer_id,
            source=StockRecordOut.of(transfer.source),
            destination=StockRecordOut.of(transfer.destination),
        )


class Movement(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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

    @classmethod
    def of(cls, check: IntegrityCheck) -> "IntegrityReport":
        return cls(
            ok=check.ok,
            records_checked=check.records_checked,
            repaired=check.repaired,
            discrepancies=[
                DiscrepancyOut(
                    stock_record_id=d.record_id,
                    location_id=d.location_id,
                    sku=d.sku,
                    check=d.check,
                    recorded=d.recorded,
                    expected=d.expected,
                )
                for d in check.discrepancies
            ],
        )
