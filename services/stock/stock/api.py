"""Catalogue routes: products and locations."""

from fastapi import APIRouter, Request, Response

from fulfilkit.http.internal import TenantId
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, expected_version
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.service import Pool
from stock import store
from stock.schemas import Location, LocationIn, LocationPatch, Product, ProductIn, ProductPatch

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)


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
        rows, total = await store.list_rows(
            conn, "products", tenant, "sku", page.limit, page.offset
        )
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
    sku: str, body: ProductPatch, tenant: TenantId, pool: Pool, if_match: IfMatch = None
) -> dict:
    async with pool.acquire() as conn:
        row = await store.update_row(
            conn,
            "products",
            "sku",
            tenant,
            sku,
            body.model_dump(exclude_unset=True),
            expected_version(if_match),
        )
        if row is None and await store.get_product(conn, tenant, sku) is None:
            raise Problem("no_content", f"No product with sku {sku!r}.")
    if row is None:
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
        rows, total = await store.list_rows(
            conn, "locations", tenant, "location_id", page.limit, page.offset
        )
    items = [Location(**r).model_dump(mode="json") for r in rows]
    return paginated(request, response, page, items, total)


@router.get("/locations/{location_id}", response_model=Location, tags=["locations"])
async def get_location(location_id: str, tenant: TenantId, pool: Pool) -> dict:
    async with pool.acquire() as conn:
        row = await store.get_location(conn, tenant, location_id)
    if row is None:
        raise Problem("no_content", f"No location {location_id!r}.")
    return row


@router.patch("/locations/{location_id}", response_model=Location, tags=["locations"])
async def patch_location(
    location_id: str, body: LocationPatch, tenant: TenantId, pool: Pool, if_match: IfMatch = None
) -> dict:
    async with pool.acquire() as conn:
        row = await store.update_row(
            conn,
            "locations",
            "location_id",
            tenant,
            location_id,
            body.model_dump(exclude_unset=True),
            expected_version(if_match),
        )
        if row is None and await store.get_location(conn, tenant, location_id) is None:
            raise Problem("no_content", f"No location {location_id!r}.")
    if row is None:
        raise Problem("conflict", "The location has changed since the version in If-Match.")
    return row
