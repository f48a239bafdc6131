"""Request and response bodies of the stock API, and how they map to the use cases."""

from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from fastapi import Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from fulfilkit.errors import Invalid
from fulfilkit.models import AwareTimestamp, Bool, Code, Int, JsonObject, StrictModel, Text
from fulfilkit.properties import properties
from stock import domain
from stock.inbound import InboundOrder, ReceiptLine
from stock.usecases.bundles import Build, DerivedLevel
from stock.usecases.integrity import IntegrityCheck
from stock.usecases.levels import LevelChange, LevelUpdate, QuantityBasis, Transfer

MAX_INBOUND_PROPERTIES = 50  # as a sale's
MAX_INBOUND_PROPERTIES_BYTES = 8 * 1024
MAX_FILTER_VALUES = 100  # values of one list filter (`sku=..&sku=..`)
CodeFilter = Annotated[list[Code] | None, Query(max_length=MAX_FILTER_VALUES)]
ReasonFilter = Annotated[list[domain.Reason] | None, Query(max_length=len(get_args(domain.Reason)))]
ReferenceFilter = Annotated[Text | None, Query(max_length=200)]

Name = Annotated[Text, Field(min_length=1, max_length=200)]
UnitType = Annotated[Text, Field(min_length=1, max_length=32)]
MinLevel = Annotated[Int, Field(ge=0, le=1_000_000_000)]
Quantity = Annotated[Int, Field(ge=0, le=2_000_000_000)]
Ean = Annotated[str, Field(pattern=r"^[0-9]{8,14}$")]


class BackorderCap(StrictModel):
    cap: Annotated[Int, Field(ge=1, le=2_000_000_000)]


def _one_backorders_error(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One error at `/backorders` for a value that is none of its forms, rather than one per
    form of the union (pointers naming the union's members)."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "backorders", 'must be "allow", "deny" or {"cap": N} with N from 1 to 2000000000'
        ) from None


Backorders = Annotated[
    Literal["allow", "deny"] | BackorderCap,
    WrapValidator(_one_backorders_error),
    Field(
        description='Whether a sale short of this product may wait for stock: `"allow"` (the'
        ' default), `"deny"` (it fails with `backorder_denied`), or `{"cap": N}` (at most N'
        " units of the product wait in one location's backorder queue)."
    ),
]
Threshold = Annotated[
    Int,
    Field(
        ge=0,
        le=1_000_000_000,
        description="Units held back at each location: sellable = available - threshold.",
    ),
]


class Preorder(StrictModel):
    expected_at: datetime | None = None
    lead_time_days: Annotated[Int, Field(ge=0, le=3650)] | None = None


class Component(StrictModel):
    sku: Code
    quantity: Annotated[Int, Field(ge=1, le=1_000_000)]


Components = Annotated[
    list[Component],
    Field(
        min_length=1,
        max_length=100,
        description="Makes the product a bundle of these products (each SKU once, each an"
        " existing product, none leading back to this one). A sale line of a bundle that is"
        " not `assembled` reserves its components (the line's quantity times each"
        " component's), all or none.",
    ),
]
Assembled = Annotated[
    Bool,
    Field(
        description="A bundle built into stock of its own (`POST /stock/builds`), then reserved"
        " like any product; otherwise its availability is derived from its components."
    ),
]


class ProductIn(StrictModel):
    sku: Code
    name: Name
    ean: Ean | None = None
    unit_type: UnitType = "unit"
    min_level: MinLevel = 0
    is_bulky: Bool = False
    backorders: Backorders = "allow"
    out_of_stock_threshold: Threshold = 0
    preorder: Preorder | None = Field(
        None, description="Shown on the issues of a sale backordered for this product."
    )
    infinite: Bool = Field(False, description="Never reserved or depleted (digital goods).")
    components: Components | None = None
    assembled: Assembled = False


# In patches a field left out is left alone. Only nullable columns accept an explicit null:
# the others default to None without being typed as optional, so `null` is a 422.
class ProductPatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    ean: Ean | None = None
    unit_type: UnitType = None  # type: ignore[assignment]
    min_level: MinLevel = None  # type: ignore[assignment]
    is_bulky: Bool = None  # type: ignore[assignment]
    backorders: Backorders = None  # type: ignore[assignment]
    out_of_stock_threshold: Threshold = None  # type: ignore[assignment]
    preorder: Preorder | None = None
    infinite: Bool = None  # type: ignore[assignment]
    components: Components | None = None
    assembled: Assembled = None  # type: ignore[assignment]


class StockLevel(BaseModel):
    quantity: int
    reserved: int
    available: int
    sellable: int
    derived: bool = Field(
        False,
        exclude_if=lambda derived: not derived,
        description="Present (true) only for a bundle that is not assembled: it has no stock"
        " of its own, and its level is what its components can make (each figure but"
        " `reserved`, which is 0).",
    )


class LocationStockLevel(StockLevel):
    location_id: str


class Product(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    ean: str | None
    unit_type: str
    min_level: int
    is_bulky: bool
    backorders: Literal["allow", "deny"] | BackorderCap
    out_of_stock_threshold: int
    preorder: Preorder | None
    infinite: bool
    components: list[Component] | None
    assembled: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ProductWithStock(Product):
    """A product with its stock: the totals over its locations, and each location's."""

    stock_level: StockLevel
    location_stock_levels: list[LocationStockLevel]

    @classmethod
    def of(
        cls,
        product: domain.Product,
        records: list[domain.StockRecord],
        derived: list[DerivedLevel] = (),  # type: ignore[assignment]
    ) -> "ProductWithStock":
        levels = [
            LocationStockLevel(
                location_id=r.location_id,
                quantity=r.quantity,
                reserved=r.reserved,
                available=r.available,
                sellable=r.sellable,
            )
            for r in records
        ] + [
            LocationStockLevel(
                location_id=d.location_id,
                quantity=d.available,
                reserved=0,
                available=d.available,
                sellable=d.available,
                derived=True,
            )
            for d in derived
        ]
        figures = ("quantity", "reserved", "available", "sellable")
        total = StockLevel(
            **{f: sum(getattr(lv, f) for lv in levels) for f in figures},
            derived=product.components is not None and not product.assembled,
        )
        return cls.model_validate(
            Product.model_validate(product).model_dump()
            | {"stock_level": total, "location_stock_levels": levels}
        )


RoutingPriority = Annotated[
    Int,
    Field(
        ge=-1_000_000,
        le=1_000_000,
        description="Where the location comes when a sale without `location_id` is routed:"
        " lower first; ties go to the default location, then by `location_id`.",
    ),
]
IsDefault = Annotated[
    Bool,
    Field(
        description="The tenant's default location (at most one): a routed sale that no"
        " location can fill waits for stock here. Setting it unsets the tenant's other"
        " default (a new version of that location), in the same transaction."
    ),
]


class LocationIn(StrictModel):
    location_id: Code
    name: Name
    address: JsonObject | None = None
    is_default: IsDefault = False
    routing_priority: RoutingPriority = 0


class Location(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    location_id: str
    name: str
    address: dict[str, Any] | None
    is_default: bool
    routing_priority: int
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
    sellable: int = Field(
        description="What sales may reserve: available less the product's"
        " out_of_stock_threshold (never below 0)."
    )
    version: int
    updated_at: datetime
    incoming: int = Field(
        0,
        description="Units open inbound orders (`open` or `receiving`) at the location still"
        " bring of the SKU: expected, not yet received.",
    )

    @classmethod
    def of(cls, record: domain.StockRecord, incoming: int = 0) -> "StockRecordOut":
        return cls(
            incoming=incoming,
            id=record.id,
            location_id=record.location_id,
            sku=record.sku,
            quantity=record.quantity,
            reserved=record.reserved,
            available=record.available,
            sellable=record.sellable,
            version=record.version,
            updated_at=record.updated_at,
        )


class LocationPatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    address: JsonObject | None = None
    is_default: IsDefault = None  # type: ignore[assignment]
    routing_priority: RoutingPriority = None  # type: ignore[assignment]


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


class DerivedRecordOut(BaseModel):
    """A bundle that is not assembled, at a location: what its components can make."""

    id: None = None
    location_id: str
    sku: str
    quantity: int
    reserved: int = 0
    available: int
    sellable: int
    incoming: int = 0  # inbound orders bring components, not the bundle
    version: None = None
    updated_at: None = None
    derived: bool = True

    @classmethod
    def of(cls, level: DerivedLevel) -> "DerivedRecordOut":
        n = level.available
        return cls(
            location_id=level.location_id, sku=level.sku, quantity=n, available=n, sellable=n
        )


def _not_zero(value: int) -> int:
    if value == 0:
        raise ValueError("must not be 0: build (positive) or take apart (negative)")
    return value


class BuildIn(StrictModel):
    sku: Code
    location_id: Code
    quantity: Annotated[
        Int,
        Field(
            ge=-1_000_000_000,
            le=1_000_000_000,
            description="Units of the bundle to build; negative takes units apart.",
        ),
        AfterValidator(_not_zero),
    ]
    notes: Notes | None = None


class BuildOut(BaseModel):
    build_id: str
    sku: str
    location_id: str
    quantity: int
    bundle: StockRecordOut
    components: list[StockRecordOut]

    @classmethod
    def of(cls, build: Build) -> "BuildOut":
        return cls(
            build_id=build.build_id,
            sku=build.sku,
            location_id=build.location_id,
            quantity=build.quantity,
            bundle=StockRecordOut.of(build.bundle),
            components=[StockRecordOut.of(r) for r in build.components],
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
    def of(cls, transfer: Transfer, incoming: tuple[int, int] = (0, 0)) -> "TransferOut":
        return cls(
            transfer_id=transfer.transfer_id,
            source=StockRecordOut.of(transfer.source, incoming[0]),
            destination=StockRecordOut.of(transfer.destination, incoming[1]),
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


# --- inbound orders ----------------------------------------------------------------------

MAX_INBOUND_LINES = 500
InboundQuantity = Annotated[Int, Field(gt=0, le=1_000_000_000)]
ReceivedQuantity = Annotated[Int, Field(ge=0, le=1_000_000_000)]
Reference = Annotated[Text, Field(min_length=1, max_length=100)]
Supplier = Annotated[Text, Field(min_length=1, max_length=200)]
Instructions = Annotated[Text, Field(max_length=1000)]
InboundProperties = properties(MAX_INBOUND_PROPERTIES, MAX_INBOUND_PROPERTIES_BYTES)
InboundStatusIn = Annotated[
    Literal["draft", "open"],
    Field(description="`draft` (not yet expected) or `open` (expected: incoming)."),
]
InboundStatusFilter = Annotated[
    list[Literal["draft", "open", "receiving", "received", "closed", "canceled"]] | None,
    Query(max_length=6),
]


class InboundLineIn(StrictModel):
    sku: Code
    quantity: InboundQuantity


InboundLines = Annotated[list[InboundLineIn], Field(min_length=1, max_length=MAX_INBOUND_LINES)]


class InboundOrderIn(StrictModel):
    reference: Annotated[Reference, Field(description="The tenant's own, unique in the tenant.")]
    supplier: Supplier | None = None
    location_id: Annotated[
        Code | None,
        Field(description="Where the goods arrive; left out, the tenant's default location."),
    ] = None
    expected_at: AwareTimestamp | None = None
    urgent: Bool = False
    instructions: Instructions | None = None
    properties: InboundProperties | None = None
    lines: InboundLines
    status: InboundStatusIn = "open"


class InboundOrderPatch(StrictModel):
    supplier: Supplier | None = None
    location_id: Code = None  # type: ignore[assignment]
    expected_at: AwareTimestamp | None = None
    urgent: Bool = None  # type: ignore[assignment]
    instructions: Instructions | None = None
    properties: InboundProperties | None = None
    lines: InboundLines = None  # type: ignore[assignment]
    status: InboundStatusIn = None  # type: ignore[assignment]

    def changes(self) -> dict[str, Any]:
        given = {name: getattr(self, name) for name in self.model_fields_set}
        if "lines" in given:
            given["lines"] = [(line.sku, line.quantity) for line in self.lines]
        return given


class InboundLineOut(BaseModel):
    sku: str
    quantity: int = Field(description="Expected.")
    received: int = Field(description="Received so far, by every receipt together.")


class InboundOrderOut(BaseModel):
    id: UUID
    reference: str
    supplier: str | None
    location_id: str
    expected_at: datetime | None
    urgent: bool
    instructions: str | None
    properties: dict[str, Any] | None
    status: Literal["draft", "open", "receiving", "received", "closed", "canceled"]
    close_reason: str | None
    lines: list[InboundLineOut]
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: InboundOrder) -> "InboundOrderOut":
        fields = {name: getattr(order, name) for name in cls.model_fields if name != "lines"}
        lines = [
            InboundLineOut(sku=x.sku, quantity=x.quantity, received=x.received) for x in order.lines
        ]
        return cls(**fields, lines=lines)


class ReceiptLineIn(StrictModel):
    sku: Code
    quantity: ReceivedQuantity
    reason: (
        Annotated[
            Text,
            Field(
                min_length=1,
                max_length=500,
                description="Required when the quantity is more or less than still expected.",
            ),
        ]
        | None
    ) = None


class ReceiptIn(StrictModel):
    lines: Annotated[list[ReceiptLineIn], Field(min_length=1, max_length=MAX_INBOUND_LINES)]

    def receipt(self) -> list[ReceiptLine]:
        return [ReceiptLine(x.sku, x.quantity, x.reason) for x in self.lines]


class ReceiptLineOut(BaseModel):
    sku: str
    quantity: int
    reason: str | None


class ReceiptShown(BaseModel):
    """A receipt as listed: its id (the `reference` of its ledger rows), what came in, who
    received it and when."""

    id: UUID
    lines: list[ReceiptLineOut]
    actor: str
    created_at: datetime


class ReceiptOut(BaseModel):
    receipt_id: UUID
    inbound_order: InboundOrderOut


class CloseIn(StrictModel):
    reason: Annotated[Text, Field(min_length=1, max_length=500)]
