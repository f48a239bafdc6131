"""Sales REST routes (public, through the gateway) and the internal claim and shipment used
by fulfilment."""

import uuid
from datetime import UTC
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import ValidationError

from fulfilkit.bounds import pointer
from fulfilkit.errors import DomainError, Duplicated, Invalid, NotFound
from fulfilkit.http.internal import Actor, TenantId, tenant_vouched_by
from fulfilkit.http.openapi import problems
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, etag, expected_version
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.models import Text, Timestamp, code_error
from fulfilkit.service import Pool
from orders import events, usecases
from orders.details import Priority
from orders.domain import (
    BACKORDER_DENIED,
    History,
    NewSale,
    Sale,
    Status,
    allocations,
    stock_issues,
)
from orders.resources import Resources
from orders.returns import RETURNABLE, Return
from orders.schemas import (
    CancelIn,
    CancelOut,
    ClaimError,
    ClaimOut,
    CreateError,
    FieldError,
    SaleEdit,
    SaleIdsIn,
    SaleIn,
    SaleOut,
    SaleReturn,
    SalesIn,
    SalesOut,
    ShipError,
    ShipIn,
    ShipOut,
)

router = APIRouter(prefix="/api/v1", tags=["sales"], route_class=StrictJsonRoute)
internal = APIRouter(prefix="/internal", include_in_schema=False, route_class=StrictJsonRoute)
# The internal routes answer fulfilment only (the gateway never forwards to /internal).
ShippingTenantId = Annotated[uuid.UUID, Depends(tenant_vouched_by("fulfilment"))]


def sale_out(
    sale: Sale, history: History | None = None, returns: list[Return] | None = None
) -> SaleOut:
    # vars(), not dataclasses.asdict(): SaleOut copies what it keeps, so no deep copy first
    fields = {k: v for k, v in vars(sale).items() if k not in ("ship_by", "deliver_by")}
    fields |= {"shop": events.shop(sale).model_dump(mode="json")}
    return SaleOut(
        **fields,
        required_dates=sale.required_dates,
        status_history=history or [],
        issues=stock_issues(sale),
        allocations=allocations(sale),
        returns=[
            SaleReturn(id=r.id, status=r.status, reason=r.reason, lines=r.lines)  # type: ignore[arg-type]
            for r in returns or []
        ],
    )


def _lines(dump: list[dict]) -> list[dict]:
    # a line without properties is stored (and published) as before: sku and quantity
    return [{k: v for k, v in line.items() if v is not None} for line in dump]


def new_sale(body: SaleIn) -> NewSale:
    dump = body.model_dump()  # JSON types only: dates are taken from the model
    dates = body.required_dates
    return NewSale(
        sale_id=body.sale_id,
        shop=dump["shop"],
        location_id=body.location_id,
        lines=_lines(dump["lines"]),
        customer=body.customer,
        shipping_address=_address(body),
        priority=body.priority,
        instructions=body.instructions,
        # in UTC, as the database gives them back: every event writes the same moment alike
        ship_by=dates.ship_by.astimezone(UTC) if dates and dates.ship_by else None,
        deliver_by=dates.deliver_by.astimezone(UTC) if dates and dates.deliver_by else None,
        invoice_value=dump["invoice_value"],
        cash_on_delivery=dump["cash_on_delivery"],
        properties=body.properties,
        allow_split=body.allow_split,
    )


def _address(body: SaleIn | SaleEdit) -> dict | None:
    """The structured address, without the fields not given."""
    if body.shipping_address is None:
        return None
    return body.shipping_address.model_dump(exclude_none=True)


def _wait_seconds(resources: Resources, prefer: str | None, response: Response) -> float | None:
    """How long to wait for the reservation outcomes: not at all when the client prefers an
    answer now (then 202)."""
    if "respond-async" not in (prefer or ""):
        return resources.create_wait_seconds
    response.headers["Preference-Applied"] = "respond-async"
    response.status_code = 202
    return None


# A sale created in a state stock refused: the reference warehouse API's "228 Created with
# issues", which a client that checks only the status code still notices.
CREATED_WITH_ISSUES = 228


@router.post(
    "/sales",
    status_code=201,
    response_model=SaleOut,
    responses={
        201: {"description": "Created and reserved: `pending`, `issues` empty."},
        202: {
            "model": SaleOut,
            "description": "Created, reservation outcome not in yet (`Prefer: respond-async`,"
            " or `SALE_CREATE_WAIT_SECONDS` ran out): `awaiting_stock`; poll `Location`.",
        },
        CREATED_WITH_ISSUES: {
            "model": SaleOut,
            "description": "Created with issues: the sale exists but stock could not reserve"
            " it, so it is `backordered` (reserved by itself once stock arrives);"
            " `issues` lists each short line with `sku`, `requested`, `available` and"
            " `reason`.",
        },
    },
)
async def create_sale(
    body: SaleIn,
    tenant: TenantId,
    actor: Actor,
    pool: Pool,
    resources: Resources,
    response: Response,
    prefer: Annotated[str | None, Header()] = None,
) -> SaleOut:
    """Creates a sale and, unless `Prefer: respond-async`, waits for stock to reserve it:
    201 reserved, 228 created with issues (short of stock), 202 still waiting. A line whose
    SKU is not in the catalogue (`/products`) is 422 with a pointer to it
    (`/lines/<i>/sku`), and nothing is created. A sale short of a product whose backorders
    are denied (or capped) is 422 with a pointer to each such line (`/lines/<i>/quantity`):
    stock reserved nothing, and the sale stays `canceled` with `backorder_denied`."""
    wait = _wait_seconds(resources, prefer, response)
    created = await usecases.create_sales(
        pool,
        resources.waiter,
        tenant,
        actor,
        [new_sale(body)],
        wait,
        resources.catalogue_wait_seconds,
    )
    if created.refused:
        [(_, refusal)] = created.refused
        raise refusal
    [sale] = [sale_out(*found) for found in created.sales]
    response.headers["Location"] = f"/api/v1/sales/{sale.sale_id}"
    if sale.cancel_reason == BACKORDER_DENIED:
        raise _backorder_denied(body, sale)
    if sale.status == "awaiting_stock":
        response.status_code = 202
    elif sale.issues:
        response.status_code = CREATED_WITH_ISSUES
    return sale


def _backorder_denied(body: SaleIn | SaleEdit, sale: SaleOut) -> Invalid:
    """The 422 of a sale stock refused because a product may not be backordered: a pointer
    to each line of a denied SKU. The sale exists, `canceled` with `backorder_denied`."""
    denied = {i.sku: i for i in sale.issues if i.reason == BACKORDER_DENIED}
    return Invalid(
        f"Sale {sale.sale_id!r} is short of products that may not be backordered; nothing"
        " was reserved and the sale is canceled (cancel_reason backorder_denied).",
        errors=[
            {
                "field": f"/lines/{index}/quantity",
                "in": "body",
                "message": f"backorders of {line.sku!r} are denied: {denied[line.sku].requested}"
                f" asked, {denied[line.sku].available} sellable",
            }
            for index, line in enumerate(body.lines)
            if line.sku in denied
        ],
    )


@router.post(
    "/sales/batch",
    response_model=SalesOut,
    responses={202: {"model": SalesOut, "description": "accepted, awaiting stock"}},
)
async def create_sales(
    body: SalesIn,
    tenant: TenantId,
    actor: Actor,
    pool: Pool,
    resources: Resources,
    response: Response,
    prefer: Annotated[str | None, Header()] = None,
) -> SalesOut:
    """Up to 100 sales in one request, each as `POST /sales` would create it; a sale that is
    not valid, names a SKU outside the catalogue, or whose sale_id exists is reported in
    `errors` while the others are created. Each sale created short of stock carries its
    `issues`, as `POST /sales` answers with 228."""
    wait = _wait_seconds(resources, prefer, response)
    valid, errors = _each_valid(body.sales)
    created = await usecases.create_sales(
        pool,
        resources.waiter,
        tenant,
        actor,
        [new_sale(s) for _, s in valid],
        wait,
        resources.catalogue_wait_seconds,
    )
    errors += [_create_error(valid[at], refusal) for at, refusal in created.refused]
    return SalesOut(
        sales=[sale_out(*found) for found in created.sales],
        errors=sorted(errors, key=lambda e: e.index),
    )


def _create_error(given: tuple[int, SaleIn], refusal: DomainError) -> CreateError:
    """A refused sale of a batch: its sale_id taken (`duplicated`), or SKUs outside the
    catalogue (`validation`, with pointers into the batch's body)."""
    index, sale = given
    if isinstance(refusal, Duplicated):
        return CreateError(
            sale_id=sale.sale_id, index=index, code="duplicated", detail=refusal.detail
        )
    return CreateError(
        sale_id=sale.sale_id,
        index=index,
        code="validation",
        detail=refusal.detail,
        errors=[
            FieldError(field=f"/sales/{index}{e['field']}", message=e["message"])
            for e in refusal.errors or []
        ],
    )


def _each_valid(items: list[dict]) -> tuple[list[tuple[int, SaleIn]], list[CreateError]]:
    """The valid sales of a batch with their index; an error for each of the others."""
    valid: list[tuple[int, SaleIn]] = []
    errors: list[CreateError] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, SaleIn.model_validate(item)))
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
    sale = await usecases.cancel_sale(
        pool, tenant, actor, body.sale_id, body.cancel_reason, expected_version(if_match)
    )
    return CancelOut(id=sale.id, sale_id=sale.sale_id, status="canceled")


REQUIRED_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": 'The version of the sale this edit is for: its ETag (`"3"`), or `*`'
    " for whatever version it is at. Without it: 428 `precondition_required`.",
    "schema": {"type": "string"},  # given its real format with the other shared headers
}


def edited_fields(body: SaleEdit) -> dict:
    """The fields an edit gives, as the sale keeps them (the same forms as `new_sale`)."""
    dump = body.model_dump(include=body.model_fields_set)
    fields = {}
    for name in (n for n in SaleEdit.model_fields if n in body.model_fields_set):
        if name == "lines":
            fields[name] = _lines(dump["lines"])
        elif name == "shipping_address":
            fields[name] = _address(body)
        elif name == "required_dates":
            dates = body.required_dates
            ship_by = dates.ship_by.astimezone(UTC) if dates and dates.ship_by else None
            deliver_by = dates.deliver_by.astimezone(UTC) if dates and dates.deliver_by else None
            given = ship_by is not None or deliver_by is not None
            fields[name] = {"ship_by": ship_by, "deliver_by": deliver_by} if given else None
        elif name in ("customer", "properties"):
            fields[name] = getattr(body, name)  # as given, like at create
        else:
            fields[name] = dump[name]
    return fields


@router.patch(
    "/sales/{sale_id}",
    response_model=SaleOut,
    responses={
        200: {
            "description": "Edited (or already as asked). After an edit of `lines` or"
            " `location_id`, stock's answer is in: `pending`, or `backordered` with `issues`."
        },
        202: {
            "model": SaleOut,
            "description": "Edited; stock has not answered the new lines yet"
            " (`Prefer: respond-async`, or `SALE_CREATE_WAIT_SECONDS` ran out):"
            " `awaiting_stock`.",
        },
        **problems(404, 409, 428),
    },
    # required, but its absence is answered 428 (not a 422 about a missing field): read by
    # the route, declared here
    openapi_extra={"parameters": [REQUIRED_IF_MATCH]},
)
async def edit_sale(
    sale_id: str,
    body: SaleEdit,
    request: Request,
    tenant: TenantId,
    actor: Actor,
    pool: Pool,
    resources: Resources,
    response: Response,
    prefer: Annotated[str | None, Header()] = None,
) -> SaleOut:
    """Changes an open sale (`awaiting_stock`, `backordered` or `pending`): its lines, its
    location, its address or customer, its details. `If-Match` (the sale's ETag) is
    required: 428 without it, 409 with the current `version` when the sale has changed
    since. Each field is validated as `POST /sales` validates it. An edit of the lines or
    the location releases the sale's reservation and asks stock again: unless
    `Prefer: respond-async`, the answer waits for stock's outcome as a create does
    (`pending`, or `backordered` with `issues`; 202 while still `awaiting_stock`)."""
    if (if_match := request.headers.get("if-match")) is None:
        raise Problem(
            "precondition_required",
            "An edit needs If-Match with the version you read (the sale's ETag, such as"
            ' `"3"`), so that it never overwrites a change you have not seen.',
        )
    version = expected_version(if_match)
    wait = _wait_seconds(resources, prefer, response)
    response.status_code = 200
    sale, history = await usecases.edit_sale(
        pool,
        resources.waiter,
        tenant,
        actor,
        sale_id,
        version,
        edited_fields(body),
        wait,
        resources.catalogue_wait_seconds,
    )
    response.headers["ETag"] = etag(sale.version)
    out = sale_out(sale, history)
    if sale.cancel_reason == BACKORDER_DENIED and "lines" in body.model_fields_set:
        raise _backorder_denied(body, out)
    if sale.status == "awaiting_stock" and sale.reservation_version == sale.version:
        response.status_code = 202
    return out


@router.get("/sales/{sale_id}", response_model=SaleOut)
async def get_sale(sale_id: str, tenant: TenantId, pool: Pool, response: Response) -> SaleOut:
    sale, history = await usecases.get_sale(pool, tenant, sale_id)
    response.headers["ETag"] = etag(sale.version)
    returns = await usecases.returns_of_sales(pool, [sale.id]) if _may_have_returns(sale) else {}
    return sale_out(sale, history, returns.get(sale.id))


def _may_have_returns(sale: Sale) -> bool:
    """Only a sale that has shipped can have returns: the others are not looked up."""
    return sale.status in RETURNABLE


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
    priority: Priority | None = None,
    ship_by_before: Annotated[
        Timestamp | None, Query(description="Sales to ship before this moment (excluded).")
    ] = None,
    ship_by_after: Annotated[
        Timestamp | None,
        Query(
            description="Sales to ship at or after this moment; with either ship_by filter,"
            " sales without `required_dates.ship_by` are left out."
        ),
    ] = None,
    sale_id: Annotated[
        Text | None,
        Query(
            min_length=1,
            max_length=100,
            description="Sales whose sale_id starts with this (a prefix match; the whole"
            " sale_id finds that sale). `%` and `_` match themselves.",
        ),
    ] = None,
) -> dict:
    """The tenant's sales, oldest first; `priority=urgent` and the `ship_by_*` filters
    narrow them to those to hurry, `sale_id` to those a person searches for."""
    sales, total = await usecases.list_sales(
        pool,
        tenant,
        statuses=status or [],
        channel=channel,
        created_from=created_from,
        created_to=created_to,
        priority=priority,
        ship_by_before=ship_by_before,
        ship_by_after=ship_by_after,
        sale_id_prefix=sale_id,
        limit=page.limit,
        offset=page.offset,
    )
    returns = await usecases.returns_of_sales(pool, [s.id for s in sales if _may_have_returns(s)])
    items = [sale_out(s, None, returns.get(s.id)).model_dump(mode="json") for s in sales]
    return paginated(request, response, page, items, total)


@internal.post("/sales/claim", response_model=ClaimOut)
async def claim_for_shipping(
    body: SaleIdsIn, tenant: ShippingTenantId, actor: Actor, pool: Pool
) -> ClaimOut:
    """Compare-and-set `pending -> in_fulfillment`: each sale is claimed at most once."""
    claimed = await usecases.claim_sales(pool, tenant, actor, body.sale_ids)
    errors = [
        ClaimError(sale_id=sale_id, code="not_found", detail=refusal.detail)
        if isinstance(refusal, NotFound)
        else ClaimError(
            sale_id=sale_id,
            code="invalid_status",
            status=refusal.extra["status"],
            detail=refusal.detail,
        )
        for sale_id, refusal in claimed.refused
    ]
    snapshots = [events.snapshot(sale).model_dump(mode="json") for sale in claimed.done]
    return ClaimOut(claimed=snapshots, errors=errors)


@internal.post("/sales/ship", response_model=ShipOut)
async def ship_sales(body: ShipIn, tenant: ShippingTenantId, actor: Actor, pool: Pool) -> ShipOut:
    """Up to 100 sales, or parts of sales, in one transaction: each part of a sale in
    fulfillment ships (the sale once all its parts have), a part already shipped stays so,
    any other is reported and never ships."""
    parts = [(p.sale_id, p.location_id) for p in body.parts or []]
    parts += [(sale_id, None) for sale_id in body.sale_ids or []]
    shipped = await usecases.ship_parts(pool, tenant, actor, parts)
    errors = [
        ShipError(sale_id=sale_id, location_id=where, code="not_found", detail=refusal.detail)
        if isinstance(refusal, NotFound)
        else ShipError(
            sale_id=sale_id,
            location_id=where,
            code="conflict",
            sale_status=refusal.extra["sale_status"],
            detail=refusal.detail,
        )
        for sale_id, where, refusal in shipped.refused
    ]
    return ShipOut(shipped=[sale.sale_id for sale in shipped.done], errors=errors)
