"""Returns REST routes (public, through the gateway): a shipped sale's units coming back."""

from collections.abc import Awaitable, Callable
from typing import Annotated, get_args
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Request, Response

from fulfilkit import idempotency
from fulfilkit.http.internal import TenantId
from fulfilkit.http.openapi import problems
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import etag
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.idempotency import Answer
from fulfilkit.models import Code
from fulfilkit.service import Pool
from orders import usecases
from orders.returns import Return
from orders.schemas import ReceiveIn, ReturnIn, ReturnOut, ReturnStatus

router = APIRouter(prefix="/api/v1", tags=["returns"], route_class=StrictJsonRoute)


def return_out(ret: Return) -> ReturnOut:
    return ReturnOut.model_validate(vars(ret))


def _answer(ret: Return, status_code: int = 200) -> Answer:
    headers = {"ETag": etag(ret.version)}
    if status_code == 201:
        headers["Location"] = f"/api/v1/returns/{ret.id}"
    return Answer.json(return_out(ret), status_code, headers=headers)


async def _once(
    request: Request,
    pool: asyncpg.Pool,
    tenant: UUID,
    work: Callable[[asyncpg.Connection], Awaitable[Answer]],
) -> Response:
    """A return's writes are not keyed by their content (a retried create would be a second
    return), so each runs once per Idempotency-Key: the key and its answer commit with it."""
    return await idempotency.once(pool, "orders", tenant, request, work)


@router.post(
    "/returns",
    status_code=201,
    response_model=ReturnOut,
    responses=problems(404, 409),
)
async def create_return(request: Request, body: ReturnIn, tenant: TenantId, pool: Pool) -> Response:
    """Asks for units of a `shipped` or `delivered` sale back: of each SKU at most what
    shipped less what the sale's earlier returns claim (409 `conflict` beyond that, with a
    pointer to each line asking too much and `remaining` by SKU). 409 for a sale that has
    not shipped, 404 for an unknown one. The return is `requested`."""

    async def create(conn: asyncpg.Connection) -> Answer:
        lines = [line.model_dump() for line in body.lines]
        ret = await usecases.create_return(conn, tenant, body.sale_id, body.reason, lines)
        return _answer(ret, 201)

    return await _once(request, pool, tenant, create)


@router.post("/returns/{return_id}/receive", response_model=ReturnOut, responses=problems(404, 409))
async def receive_return(
    request: Request, return_id: UUID, body: ReceiveIn, tenant: TenantId, pool: Pool
) -> Response:
    """What came back: each line a SKU of the return with its `disposition` and
    `location_id`, at most what the return asked for of each SKU (422 with pointers
    otherwise). The return becomes `received` (409 unless it was `requested`); stock then
    restocks the `restock` lines at their locations and records the `discard` ones."""

    async def receive(conn: asyncpg.Connection) -> Answer:
        lines = [line.model_dump() for line in body.lines]
        return _answer(await usecases.receive_return(conn, tenant, return_id, lines))

    return await _once(request, pool, tenant, receive)


@router.post("/returns/{return_id}/close", response_model=ReturnOut, responses=problems(404, 409))
async def close_return(request: Request, return_id: UUID, tenant: TenantId, pool: Pool) -> Response:
    """A received return is `closed` (409 while `requested`); closing it again changes
    nothing."""

    async def close(conn: asyncpg.Connection) -> Answer:
        return _answer(await usecases.close_return(conn, tenant, return_id))

    return await _once(request, pool, tenant, close)


@router.post("/returns/{return_id}/cancel", response_model=ReturnOut, responses=problems(404, 409))
async def cancel_return(
    request: Request, return_id: UUID, tenant: TenantId, pool: Pool
) -> Response:
    """A requested return whose units will not come is `canceled` (409 once received):
    what it asked for may be returned again. Canceling it again changes nothing."""

    async def cancel(conn: asyncpg.Connection) -> Answer:
        return _answer(await usecases.cancel_return(conn, tenant, return_id))

    return await _once(request, pool, tenant, cancel)


@router.get("/returns/{return_id}", response_model=ReturnOut, responses=problems(404))
async def get_return(
    return_id: UUID, tenant: TenantId, pool: Pool, response: Response
) -> ReturnOut:
    ret = await usecases.get_return(pool, tenant, return_id)
    response.headers["ETag"] = etag(ret.version)
    return return_out(ret)


@router.get("/returns")
async def list_returns(
    request: Request,
    response: Response,
    tenant: TenantId,
    pool: Pool,
    page: Page,
    status: Annotated[
        list[ReturnStatus] | None, Query(max_length=len(get_args(ReturnStatus)))
    ] = None,
    sale_id: Code | None = None,
) -> dict:
    """The tenant's returns, oldest first; `status` and `sale_id` narrow them."""
    found, total = await usecases.list_returns(
        pool, tenant, statuses=status or [], sale_id=sale_id, limit=page.limit, offset=page.offset
    )
    items = [return_out(r).model_dump(mode="json") for r in found]
    return paginated(request, response, page, items, total)
