"""Internal routes the gateway's admin API calls (`/api/v1/admin/stock/integrity`): the
integrity check and rebuild over every tenant's records, or one tenant's."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from fulfilkit.http.internal import verify_caller
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.service import Pool
from stock.schemas import IntegrityReport
from stock.usecases import integrity

PREFIX = "/internal/stock"


async def _gateway_only(request: Request) -> None:
    verify_caller(request, frozenset({"gateway"}))


router = APIRouter(
    prefix=PREFIX,
    include_in_schema=False,
    dependencies=[Depends(_gateway_only)],
    route_class=StrictJsonRoute,
)

TenantFilter = Annotated[UUID | None, Query(description="One tenant's records only.")]


@router.get("/integrity", response_model=IntegrityReport)
async def check_integrity(pool: Pool, tenant_id: TenantFilter = None) -> IntegrityReport:
    return IntegrityReport.of(await integrity.check_integrity(pool, tenant_id))


@router.post("/integrity/rebuild", response_model=IntegrityReport)
async def rebuild_reserved(pool: Pool, tenant_id: TenantFilter = None) -> IntegrityReport:
    return IntegrityReport.of(await integrity.rebuild_reserved(pool, tenant_id))
