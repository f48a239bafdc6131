"""Catalogue routes: products and locations. Single answers carry the entity's `version` as
their `ETag`, which `If-Match` on a PATCH takes back."""

from typing import Protocol, TypeVar

from fastapi import APIRouter, Request, Response

from fulfilkit.http.internal import TenantId
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, etag, expected_version
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.service import Pool
from stock.schemas import (
    Location,
    LocationIn,
    LocationPatch,
    Product,
    ProductIn,
    ProductPatch,
    ProductWithStock,
)
from stock.usecases import catalogue

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)


def _tagged(response: Response, entity: V) -> V:
    """The entity, with its version as the answer's ETag (what `If-Match` takes back)."""
    response.headers["ETag"] = etag(entity.version)
    return entity


@router.post("/products", status_code=201, response_model=Product, tags=["products"])
async def create_product(
    body: ProductIn, tenant: TenantId, pool: Pool, response: Response
) -> Product:
    product = await catalogue.create_product(pool, tenant, **body.model_dump(mode="json"))
    return Product.model_validate(_tagged(response, product))


@router.get("/products", tags=["products"])
async def list_products(
    request: Request, response: Response, tenant: TenantId, pool: Pool, page: Page
) -> dict:
    products, total = await catalogue.list_products(pool, tenant, page.limit, page.offset)
    items = [Product.model_validate(p).model_dump(mode="json") for p in products]
    return paginated(request, response, page, items, total)


@router.get("/products/{sku}", response_model=ProductWithStock, tags=["products"])
async def get_product(
    sku: str, tenant: TenantId, pool: Pool, response: Response
) -> ProductWithStock:
    """The product with its stock: `stock_level` totals its locations' records and
    `location_stock_levels` lists each (`quantity`, `reserved`, `available`, `sellable`).
    A bundle that is not assembled shows what its components can make at each location
    (`derived: true`)."""
    product, records, derived = await catalogue.get_product_with_stock(pool, tenant, sku)
    return ProductWithStock.of(_tagged(response, product), records, derived)


@router.patch("/products/{sku}", response_model=Product, tags=["products"])
async def patch_product(
    sku: str,
    body: ProductPatch,
    tenant: TenantId,
    pool: Pool,
    response: Response,
    if_match: IfMatch = None,
) -> Product:
    product = await catalogue.update_product(
        pool,
        tenant,
        sku,
        body.model_dump(mode="json", exclude_unset=True),
        expected_version(if_match),
    )
    return Product.model_validate(_tagged(response, product))


@router.post("/locations", status_code=201, response_model=Location, tags=["locations"])
async def create_location(
    body: LocationIn, tenant: TenantId, pool: Pool, response: Response
) -> Location:
    location = await catalogue.create_location(pool, tenant, **body.model_dump())
    return Location.model_validate(_tagged(response, location))


@router.get("/locations", tags=["locations"])
async def list_locations(
    request: Request, response: Response, tenant: TenantId, pool: Pool, page: Page
) -> dict:
    locations, total = await catalogue.list_locations(pool, tenant, page.limit, page.offset)
    items = [Location.model_validate(loc).model_dump(mode="json") for loc in locations]
    return paginated(request, response, page, items, total)


@router.get("/locations/{location_id}", response_model=Location, tags=["locations"])
async def get_location(
    location_id: str, tenant: TenantId, pool: Pool, response: Response
) -> Location:
    location = await catalogue.get_location(pool, tenant, location_id)
    return Location.model_validate(_tagged(response, location))


@router.patch("/locations/{location_id}", response_model=Location, tags=["locations"])
async def patch_location(
    location_id: str,
    body: LocationPatch,
    tenant: TenantId,
    pool: Pool,
    response: Response,
    if_match: IfMatch = None,
) -> Location:
    location = await catalogue.update_location(
        pool, tenant, location_id, body.model_dump(exclude_unset=True), expected_version(if_match)
    )
    return Location.model_validate(_tagged(response, location))
