"""Sales REST routes (public, through the gateway) and the internal claim used by shipping."""

import uuid
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import ValidationError

from fulfilkit.bounds import pointer
from fulfilkit.events import utcnow
from fulfilkit.http.internal import Actor, TenantId, tenant_vouched_by
from fulfilkit.http.openapi import problems
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, etag, expected_version
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.models import Text, Timestamp, code_error
from fulfilkit.notify import Waiter
from fulfilkit.service import Pool, Runtime, RuntimeDep
from orders import events, store
from orders.changes import Decided, change_each, save_change_if_unchanged
from orders.domain import Sale, Status, VersionMismatch, cancel, claim, ship
from orders.schemas import (
    CancelIn,
    CancelOut,
    ClaimError,
    ClaimOut,
    CreateError,
    FieldError,
    SaleIdsIn,
    SaleIn,
    SaleOut,
    SalesIn,
    SalesOut,
    ShipError,
    ShipOut,
)

router = APIRouter(prefix="/api/v1", tags=["sales"], route_class=StrictJsonRoute)
internal = APIRouter(prefix="/internal", include_in_schema=False, route_class=StrictJsonRoute)
# The internal routes answer fulfilment only (the gateway never forwards to /internal).
ShippingTenantId = Annotated[uuid.UUID, Depends(tenant_vouched_by("fulfilment"))]


def sale_out(sale: Sale, history: list[dict] | None = None) -> SaleOut:
    # vars(), not dataclasses.asdict(): SaleOut validates into its own objects anyway, and
    # asdict's deep copy of the JSON fields cost more than the rest of the answer.
    return SaleOut(**vars(sale), status_history=history or [])


def new_sale(body: SaleIn, tenant: uuid.UUID) -> Sale:
    dump = body.model_dump()
    now = utcnow()
    return Sale(
        id=uuid.uuid4(),
        tenant_id=tenant,
        sale_id=body.sale_id,
        status="awaiting_stock",
        version=1,
        shop=dump["shop"],
        location_id=body.location_id,
        lines=dump["lines"],
        customer=body.customer,
        shipping_address=body.shipping_address,
        cancel_reason=None,
        reservation=None,
        created_at=now,
        updated_at=now,
    )


def _the_one(decided: Decided, sale_id: str, refusal: str) -> Sale:
    """The one sale a single-sale change was about; 404 or 409 if it was refused."""
    if decided.accepted:
        return decided.accepted[0]
    [(_, sale)] = decided.refused
    if sale is None:
        raise Problem("no_content", f"No sale with sale_id {sale_id!r}.")
    raise Problem("conflict", f"The sale is {sale.status} and {refusal}.", sale_status=sale.status)


async def _create(
    runtime: Runtime, sales: list[Sale], actor: str, wait: bool
) -> tuple[list[SaleOut], list[Sale]]:
    """Insert new sales; the created ones as answers, in order, and those whose sale_id was
    taken. With `wait`, each answer is read back once its reservation outcome is in (or the
    wait is over, then still `awaiting_stock`)."""
    waiter: Waiter = runtime.extras["waiter"]
    # expected before the insert: the outcome may be committed before the insert returns
    expected = {str(s.id): waiter.expect(str(s.id)) for s in sales} if wait else {}
    try:
        async with runtime.pool.acquire() as conn:
            inserted = await store.insert_sales(
                conn, sales, actor, [events.sale_created(s) for s in sales]
            )
        created = [s for s in sales if s.id in inserted]
        refused = [s for s in sales if s.id not in inserted]
        if wait:
            await waiter.wait_all(
                {str(s.id): expected[str(s.id)] for s in created},
                runtime.settings.sale_create_wait_seconds,
            )
    finally:
        for key, future in expected.items():  # the refused ones too, or after an error
            waiter.forget(key, future)
    if not wait:  # the sales as accepted, whatever happened since
        return [
            sale_out(
                s,
                [
                    {
                        "from_status": None,
                        "to_status": s.status,
                        "reason": "created",
                        "actor": actor,
                        "at": s.created_at,
                    }
                ],
            )
            for s in created
        ], refused
    async with runtime.pool.acquire() as conn:
        found = await store.sales_with_history(conn, [s.id for s in created])
    return [sale_out(*found[s.id]) for s in created], refused


def _taken(sale_id: str) -> str:
    return f"A sale with sale_id {sale_id!r} exists."


def _prefers_async(prefer: str | None, response: Response) -> bool:
    if "respond-async" not in (prefer or ""):
        return False
    response.headers["Preference-Applied"] = "respond-async"
    response.status_code = 202
    return True


@router.post(
    "/sales",
    status_code=201,
    response_model=SaleOut,
    responses={202: {"model": SaleOut, "description": "accepted, awaiting stock"}},
)
async def create_sale(
    body: SaleIn,
    tenant: TenantId,
    actor: Actor,
    runtime: RuntimeDep,
    response: Response,
    prefer: Annotated[str | None, Header()] = None,
) -> SaleOut:
    respond_async = _prefers_async(prefer, response)
    created, _ = await _create(runtime, [new_sale(body, tenant)], actor, not respond_async)
    if not created:
        raise Problem("duplicated", _taken(body.sale_id))
    [sale] = created
    response.headers["Location"] = f"/api/v1/sales/{sale.sale_id}"
    if sale.status == "awaiting_stock":
        response.status_code = 202
    return sale


@router.post(
    "/sales/batch",
    response_model=SalesOut,
    responses={202: {"model": SalesOut, "description": "accepted, awaiting stock"}},
)
async def create_sales(
    body: SalesIn,
    tenant: TenantId,
    actor: Actor,
    runtime: RuntimeDep,
    response: Response,
    prefer: Annotated[str | None, Header()] = None,
) -> SalesOut:
    """Up to 100 sales in one request, each as `POST /sales` would create it; a sale that is
    not valid or whose sale_id exists is reported in `errors` while the others are created."""
    respond_async = _prefers_async(prefer, response)
    valid, errors = _each_valid(body.sales)
    created, refused = await _create(
        runtime, [new_sale(s, tenant) for _, s in valid], actor, not respond_async
    )
    index_of = {sale.sale_id: i for i, sale in valid}
    errors += [
        CreateError(
            sale_id=s.sale_id,
            index=index_of[s.sale_id],
            code="duplicated",
            detail=_taken(s.sale_id),
        )
        for s in refused
    ]
    return SalesOut(sales=created, errors=sorted(errors, key=lambda e: e.index))


def _each_valid(items: list[dict]) -> tuple[list[tuple[int, SaleIn]], list[CreateError]]:
    """The valid sales of a batch with their index, the first of each sale_id; an error for
    each of the others."""
    valid: list[tuple[int, SaleIn]] = []
    errors: list[CreateError] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            sale = SaleIn.model_validate(item)
        except ValidationError as invalid:
            given = item.get("sale_id")
            errors.append(
                CreateError(
                    sale_id=given if isinstance(given, str) and code_error(given) is None else None,
                    index=index,
                    code="validation",
                    detail="The sale has invalid fields.",
                    errors=[
                        FieldError(field=f"/sales/{index}{pointer(e['loc'])}", message=e["msg"])
                        for e in invalid.errors()
                    ],
                )
            )
            continue
        if sale.sale_id in seen:
            errors.append(
                CreateError(
                    sale_id=sale.sale_id,
                    index=index,
                    code="duplicated",
                    detail=f"sale_id {sale.sale_id!r} appears earlier in this batch.",
                )
            )
            continue
        seen.add(sale.sale_id)
        valid.append((index, sale))
    return valid, errors


@router.post("/sales/cancel", response_model=CancelOut, responses=problems(404))
async def cancel_sale(
    body: CancelIn,
    tenant: TenantId,
    actor: Actor,
    pool: Pool,
    if_match: IfMatch = None,
) -> CancelOut:
    """From this answer on the sale can never ship; its stock and fulfillments follow. With
    `If-Match`, only if the sale is still at that version (409 otherwise)."""
    version = expected_version(if_match)
    try:
        decided = await change_each(
            pool,
            tenant,
            actor,
            [body.sale_id],
            lambda sale: cancel(sale, body.cancel_reason, version),
        )
    except VersionMismatch as stale:
        raise Problem(
            "conflict",
            f"The sale has changed since version {stale.expected}: it is"
            f" {stale.sale.status} at version {stale.sale.version}.",
            sale_status=stale.sale.status,
            version=stale.sale.version,
        ) from None
    sale = _the_one(decided, body.sale_id, "can no longer be canceled")
    return CancelOut(id=sale.id, sale_id=sale.sale_id, status="canceled")


@router.get("/sales/{sale_id}", response_model=SaleOut)
async def get_sale(sale_id: str, tenant: TenantId, pool: Pool, response: Response) -> SaleOut:
    async with pool.acquire() as conn:
        found = await store.sale_with_history(conn, tenant, sale_id)
    if found is None:
        raise Problem("no_content", f"No sale with sale_id {sale_id!r}.")
    sale, history = found
    response.headers["ETag"] = etag(sale.version)
    return sale_out(sale, history)


@router.get("/sales")
async def list_sales(
    request: Request,
    response: Response,
    tenant: TenantId,
    pool: Pool,
    page: Page,
    status: Annotated[list[Status] | None, Query(max_length=len(get_args(Status)))] = None,
    channel: Annotated[Text | None, Query(max_length=64)] = None,
    created_from: Timestamp | None = None,
    created_to: Timestamp | None = None,
) -> dict:
    async with pool.acquire() as conn:
        sales, total = await store.list_sales(
            conn,
            tenant,
            statuses=status or [],
            channel=channel,
            created_from=created_from,
            created_to=created_to,
            limit=page.limit,
            offset=page.offset,
        )
    items = [sale_out(s).model_dump(mode="json") for s in sales]
    return paginated(request, response, page, items, total)


@internal.post("/sales/claim", response_model=ClaimOut)
async def claim_for_shipping(
    body: SaleIdsIn, tenant: ShippingTenantId, actor: Actor, pool: Pool
) -> ClaimOut:
    """Compare-and-set `pending -> in_fulfillment`: each sale is claimed at most once."""
    decided = await change_each(pool, tenant, actor, body.sale_ids, claim)
    errors = [
        ClaimError(sale_id=sale_id, code="not_found", detail="No such sale.")
        if sale is None
        else ClaimError(
            sale_id=sale_id,
            code="invalid_status",
            status=sale.status,
            detail=f"Only pending sales can be shipped; this one is {sale.status}.",
        )
        for sale_id, sale in decided.refused
    ]
    claimed = [events.snapshot(sale).model_dump(mode="json") for sale in decided.accepted]
    return ClaimOut(claimed=claimed, errors=errors)


@internal.post("/sales/ship", response_model=ShipOut)
async def ship_sales(
    body: SaleIdsIn, tenant: ShippingTenantId, actor: Actor, pool: Pool
) -> ShipOut:
    """`ship_sale` for up to 100 sales in one transaction: each sale in fulfillment ships,
    one already shipped stays so, any other is reported and never ships."""
    decided = await change_each(pool, tenant, actor, body.sale_ids, ship)
    errors = [
        ShipError(sale_id=sale_id, code="not_found", detail=f"No sale with sale_id {sale_id!r}.")
        if sale is None
        else ShipError(
            sale_id=sale_id,
            code="conflict",
            sale_status=sale.status,
            detail=f"The sale is {sale.status} and cannot ship.",
        )
        for sale_id, sale in decided.refused
    ]
    shipped = [sale.sale_id for sale in decided.accepted]
    return ShipOut(shipped=shipped, errors=errors)


def snapshot_response(sale: Sale) -> Response:
    # serialized by pydantic in one call, not walked again by FastAPI's jsonable_encoder
    return Response(events.snapshot(sale).model_dump_json(), media_type="application/json")


@internal.post("/sales/{sale_id}/ship", response_class=Response)
async def ship_sale(sale_id: str, tenant: ShippingTenantId, actor: Actor, pool: Pool) -> Response:
    """Compare-and-set `in_fulfillment -> shipped`, asked by fulfilment before it ships;
    answers with the sale's snapshot."""
    async with pool.acquire() as conn:
        sale = await store.get_sale(conn, tenant, sale_id)
        if sale is not None and sale.status == "in_fulfillment":
            # the usual case in one round trip; anything else is decided under the lock
            change = ship(sale)
            assert change is not None
            if await save_change_if_unchanged(conn, change, actor):
                return snapshot_response(sale)
    decided = await change_each(pool, tenant, actor, [sale_id], ship)
    return snapshot_response(_the_one(decided, sale_id, "cannot ship"))
