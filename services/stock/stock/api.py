"""Stock REST routes: parse, call the store and the domain, map outcomes to HTTP."""

import uuid
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Header, Query, Request, Response

from fulfilkit.http.internal import Actor, TenantId
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.problems import Problem
from fulfilkit.outbox import add_events
from fulfilkit.service import Pool
from stock import events, store
from stock.domain import StockRecord, opening_entry
from stock.schemas import (
    Location,
    LocationIn,
    Product,
    ProductIn,
    ProductPatch,
    StockRecordIn,
    StockRecordOut,
)

router = APIRouter(prefix="/api/v1")


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip().strip('"').removeprefix("W/").strip('"'))
    except ValueError:
        raise Problem("invalid_request", "If-Match must be a version number.") from None


@router.post("/products", status_code=201, response_model=Product, tags=["products"])
async def create_product(body: ProductIn, tenant: TenantId, pool: Pool) -> dict:
    async with pool.acquire() as conn:
        row = await store.insert_product(conn, tenant, body.model_dump())
    if not row:
        raise Problem("duplicated", f"A product with sku {body.sku!r} already exists.")
    return row


@router.get("/products", tags=["products"])
async def list_products(
    request: Request, response: Response, tenant: TenantId, pool: Pool, page: Page
) -> dict:
    async with pool.acquire() as conn:
        rows, total = await store.list_rows(conn, "products", tenant, "sku", page.limit,
                                            page.offset)
    items = [Product(**r).model_dump(mode="json") for r in rows]
    return paginated(request, response, page, items, total)


@router.get("/products/{sku}", response_model=Product, tags=["products"])
async def get_product(sku: str, tenant: TenantId, pool: Pool) -> dict:
    async with pool.acquire() as conn:
        row = await store.get_product(conn, tenant, sku)
    if row is None:
        raise Problem("no_content", f"No product with sku {sku!r}.")
    return row


@router.patch("/products/{sku}", response_model=Product, tags=["products"])
async def patch_product(
    sku: str, body: ProductPatch, tenant: TenantId, pool: Pool,
    if_match: Annotated[str | None, Header()] = None,
) -> dict:
    changes = body.model_dump(exclude_unset=True)
    async with pool.acquire() as conn, conn.transaction():
        row = await store.update_product(conn, tenant, sku, changes, parse_if_match(if_match))
        if row is None:
            if await store.get_product(conn, tenant, sku) is None:
                raise Problem("no_content", f"No product with sku {sku!r}.")
            raise Problem("conflict", "The product has changed since the version in If-Match.")
    return row


@router.post("/locations", status_code=201, response_model=Location, tags=["locations"])
async def create_location(body: LocationIn, tenant: TenantId, pool: Pool) -> dict:
    async with pool.acquire() as conn:
        row = await store.insert_location(conn, tenant, body.model_dump())
    if not row:
        raise Problem("duplicated", f"Location {body.location_id!r} already exists.")
    return row


@router.get("/locations", tags=["locations"])
async def list_locations(
    request: Request, response: Response, tenant: TenantId, pool: Pool, page: Page
) -> dict:
    async with pool.acquire() as conn:
        rows, total = await store.list_rows(conn, "locations", tenant, "location_id",
                                            page.limit, page.offset)
    items = [Location(**r).model_dump(mode="json") for r in rows]
    return paginated(request, response, page, items, total)


@router.post("/stock/stock-records", status_code=201, response_model=StockRecordOut,
             tags=["stock"])
async def create_stock_record(
    body: StockRecordIn, tenant: TenantId, actor: Actor, pool: Pool
) -> StockRecordOut:
    record = StockRecord(uuid.uuid4(), tenant, body.location_id, body.sku, body.quantity, 0, 1)
    async with pool.acquire() as conn, conn.transaction():
        try:
            created = await store.insert_stock_record(conn, record)
        except asyncpg.ForeignKeyViolationError:
            raise Problem(
                "validation", "The sku or location does not exist.",
                errors=[{"field": "/sku", "message": "must name an existing product"},
                        {"field": "/location_id", "message": "must name an existing location"}],
            ) from None
        if not created:
            raise Problem("duplicated", f"A stock record for {body.sku!r} at "
                                        f"{body.location_id!r} already exists.")
        entry = opening_entry(record)
        await store.insert_movements(conn, [entry], actor)
        await add_events(conn, "stock", [events.stock_changed(entry)])
        row = await conn.fetchrow("SELECT * FROM stock.stock_records WHERE id = $1", record.id)
    return StockRecordOut.of(dict(row))


@router.get("/stock/stock-records", tags=["stock"])
async def list_stock_records(
    request: Request, response: Response, tenant: TenantId, pool: Pool, page: Page,
    sku: Annotated[list[str] | None, Query()] = None,
    location_id: Annotated[list[str] | None, Query()] = None,
) -> dict:
    async with pool.acquire() as conn:
        rows, total = await store.list_rows(
            conn, "stock_records", tenant, "location_id, sku", page.limit, page.offset,
            filters={"sku": sku or [], "location_id": location_id or []},
        )
    items = [StockRecordOut.of(r).model_dump(mode="json") for r in rows]
    return paginated(request, response, page, items, total)
