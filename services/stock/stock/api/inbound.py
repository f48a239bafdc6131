"""Inbound orders: deliveries expected from a supplier at a location, and receipts against
them. Single answers carry the order's `version` as their `ETag`, which `If-Match` on a
change takes back."""

from uuid import UUID

import asyncpg
from fastapi import APIRouter, Request, Response

from fulfilkit import idempotency
from fulfilkit.faults import crash_point
from fulfilkit.http.internal import Actor, TenantId
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.preconditions import IfMatch, etag, expected_version
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.idempotency import Answer
from fulfilkit.models import Timestamp
from fulfilkit.service import Pool
from stock.inbound import InboundOrder
from stock.schemas import (
    CloseIn,
    CodeFilter,
    InboundOrderIn,
    InboundOrderOut,
    InboundOrderPatch,
    InboundStatusFilter,
    ReceiptIn,
    ReceiptOut,
    ReceiptShown,
)
from stock.usecases import inbound

router = APIRouter(
    prefix="/api/v1/inbound-orders", tags=["inbound orders"], route_class=StrictJsonRoute
)


def _tagged(response: Response, order: InboundOrder) -> InboundOrderOut:
    response.headers["ETag"] = etag(order.version)
    return InboundOrderOut.of(order)


@router.post("", status_code=201, response_model=InboundOrderOut)
async def create_inbound_order(
    body: InboundOrderIn, tenant: TenantId, pool: Pool, response: Response
) -> InboundOrderOut:
    """A delivery expected at `location_id` (the tenant's default location when left out);
    `reference` is unique in the tenant (409 `duplicated`), and every line's SKU a product."""
    fields = body.model_dump(mode="json", exclude={"lines", "expected_at"})
    order = await inbound.create_inbound_order(
        pool,
        tenant,
        **fields,
        expected_at=body.expected_at,
        lines=[(line.sku, line.quantity) for line in body.lines],
    )
    return _tagged(response, order)


@router.get("")
async def list_inbound_orders(
    request: Request,
    response: Response,
    tenant: TenantId,
    pool: Pool,
    page: Page,
    status: InboundStatusFilter = None,
    location_id: CodeFilter = None,
    sku: CodeFilter = None,
    expected_from: Timestamp | None = None,
    expected_to: Timestamp | None = None,
) -> dict:
    """Inbound orders, oldest first: of these statuses, locations and SKUs when given, and
    expected from `expected_from` (inclusive) to `expected_to` (exclusive)."""
    orders, total = await inbound.list_inbound_orders(
        pool,
        tenant,
        statuses=status or [],
        locations=location_id or [],
        skus=sku or [],
        expected_from=expected_from,
        expected_to=expected_to,
        limit=page.limit,
        offset=page.offset,
    )
    items = [InboundOrderOut.of(o).model_dump(mode="json") for o in orders]
    return paginated(request, response, page, items, total)


@router.get("/{order_id}", response_model=InboundOrderOut)
async def get_inbound_order(
    order_id: UUID, tenant: TenantId, pool: Pool, response: Response
) -> InboundOrderOut:
    return _tagged(response, await inbound.get_inbound_order(pool, tenant, order_id))


@router.patch("/{order_id}", response_model=InboundOrderOut)
async def patch_inbound_order(
    order_id: UUID,
    body: InboundOrderPatch,
    tenant: TenantId,
    pool: Pool,
    response: Response,
    if_match: IfMatch = None,
) -> InboundOrderOut:
    """Change a `draft` or `open` order (409 once receiving, or later); `lines` replace its
    lines, `status` moves it between `draft` and `open`."""
    order = await inbound.update_inbound_order(
        pool, tenant, order_id, body.changes(), expected_version(if_match)
    )
    return _tagged(response, order)


@router.post("/{order_id}/cancel", response_model=InboundOrderOut)
async def cancel_inbound_order(
    order_id: UUID, tenant: TenantId, pool: Pool, response: Response, if_match: IfMatch = None
) -> InboundOrderOut:
    """Cancel a `draft` or `open` order that nothing was received against (409 otherwise)."""
    order = await inbound.cancel_inbound_order(pool, tenant, order_id, expected_version(if_match))
    return _tagged(response, order)


@router.post("/{order_id}/close", response_model=InboundOrderOut)
async def close_inbound_order(
    order_id: UUID,
    body: CloseIn,
    tenant: TenantId,
    pool: Pool,
    response: Response,
    if_match: IfMatch = None,
) -> InboundOrderOut:
    """Close an `open` or `receiving` order by hand, with a reason: the rest will never
    come (409 otherwise)."""
    order = await inbound.close_inbound_order(
        pool, tenant, order_id, body.reason, expected_version(if_match)
    )
    return _tagged(response, order)


@router.post("/{order_id}/receipts", status_code=201, response_model=ReceiptOut)
async def receive(
    request: Request,
    order_id: UUID,
    body: ReceiptIn,
    tenant: TenantId,
    actor: Actor,
    pool: Pool,
) -> Response:
    """Receive against an `open` or `receiving` order: on hand rises at its location in the
    same transaction as the ledger rows (reason `receipt`, reference the receipt's id) and
    the order's `received`. A line more or less than still expected needs a `reason`. Once
    per `Idempotency-Key`."""

    async def work(conn: asyncpg.Connection) -> Answer:
        order, receipt_id = await inbound.receive(conn, tenant, order_id, body.receipt(), actor)
        out = ReceiptOut(receipt_id=receipt_id, inbound_order=InboundOrderOut.of(order))
        return Answer.json(out, 201, headers={"ETag": etag(order.version)})

    response = await idempotency.once(pool, "stock", tenant, request, work)
    crash_point("stock.after_commit")  # committed, not yet answered
    return response


@router.get("/{order_id}/receipts")
async def list_receipts(
    request: Request, response: Response, order_id: UUID, tenant: TenantId, pool: Pool, page: Page
) -> dict:
    """The order's receipts, oldest first: what came in, with the reasons given for lines
    more or less than expected."""
    receipts, total = await inbound.list_receipts(
        pool, tenant, order_id, limit=page.limit, offset=page.offset
    )
    items = [ReceiptShown.model_validate(r).model_dump(mode="json") for r in receipts]
    return paginated(request, response, page, items, total)
