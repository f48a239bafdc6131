"""Items of the lists whose answers the OpenAPI document leaves untyped (`object`): the
ledger's movements, an inbound order's receipts and the stock-records list (whose rows may
be a bundle's derived levels). Written by hand from what those lists answer; answers keep
fields the client does not know."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow")


class Movement(_Item):
    """One row of the append-only stock ledger."""

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


class ReceiptLine(_Item):
    sku: str
    quantity: int
    reason: str | None


class Receipt(_Item):
    """A receipt as listed: its id (the `reference` of its ledger rows), what came in, who
    received it and when."""

    id: UUID
    lines: list[ReceiptLine]
    actor: str
    created_at: datetime


class StockRow(_Item):
    """A row of `GET /stock/stock-records`: a record, or (`derived: true`) what an
    unassembled bundle's components can make at a location, without `id` and `version`."""

    id: UUID | None = None
    location_id: str
    sku: str
    quantity: int
    reserved: int = 0
    available: int
    sellable: int
    incoming: int = 0
    version: int | None = None
    updated_at: datetime | None = None
    derived: bool = False
