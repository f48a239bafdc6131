"""Fulfilment REST routes: shipping init, fulfillment status, reading fulfillments."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from fastapi import APIRouter, Response

from fulfilkit.errors import Conflict, NotFound
from fulfilkit.http.internal import Actor, TenantId
from fulfilkit.http.openapi import problems
from fulfilkit.http.problems import CODE_OF_STATUS, Problem
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.service import RuntimeDep
from fulfilment import labels, usecases
from fulfilment.orders_client import OrdersRefused, OrdersUnavailable
from fulfilment.resources import Resources
from fulfilment.schemas import (
    FulfillmentOut,
    ShippingInitIn,
    ShippingInitOut,
    StatusIn,
    StatusUpdatesIn,
    StatusUpdatesOut,
    fulfillment_out,
    refusal_out,
)
from fulfilment.settings import FulfilmentSettings

router = APIRouter(prefix="/api/v1/fulfillment", tags=["fulfillment"], route_class=StrictJsonRoute)

ORDERS_RETRY_AFTER = {"Retry-After": "1"}
PDF = "application/pdf"


@contextmanager
def orders_answers() -> Iterator[None]:
    """What orders not doing what was asked means for this request: its refusals are this
    request's client errors (never a 503, which invites the same request again); orders out
    of reach or failing means try again soon."""
    try:
        yield
    except OrdersRefused as refused:
        raise Problem(CODE_OF_STATUS[refused.status], refused.detail) from None
    except OrdersUnavailable as unavailable:
        raise Problem("unavailable", unavailable.detail, headers=ORDERS_RETRY_AFTER) from None


@router.post("/shipping/init", response_model=ShippingInitOut)
async def shipping_init(
    body: ShippingInitIn, tenant: TenantId, actor: Actor, runtime: RuntimeDep, resources: Resources
) -> ShippingInitOut:
    """Claim each pending sale for shipping and give it a fulfillment per location it ships
    from (one, unless stock split it across locations); report the others. A sale's
    fulfillments are together in the answer, the location holding most of its units first.

    Calling it again for the same sales returns the fulfillments they already have.
    """
    settings = cast(FulfilmentSettings, runtime.settings)
    with orders_answers():
        outcome = await usecases.init_shipping(
            runtime.pool,
            resources.orders,
            settings,
            tenant,
            actor,
            body.sale_ids,
            settled=resources.settled,
        )
    return ShippingInitOut(
        fulfillments=[fulfillment_out(f) for f in outcome.fulfillments],
        errors=[refusal_out(r, "sale_id") for r in outcome.refused],
    )


@router.get("/fulfillments/{fulfillment_id}", response_model=FulfillmentOut)
async def get_fulfillment(
    fulfillment_id: str, tenant: TenantId, runtime: RuntimeDep
) -> FulfillmentOut:
    return fulfillment_out(await usecases.get_fulfillment(runtime.pool, tenant, fulfillment_id))


class PdfResponse(Response):
    media_type = PDF


@router.get(
    "/fulfillments/{fulfillment_id}/label",
    response_class=PdfResponse,
    responses={
        200: {
            "description": "The shipping label: a one-page 4 x 6 inch PDF.",
            "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
        },
        **problems(404),
    },
)
async def get_label(fulfillment_id: str, tenant: TenantId, runtime: RuntimeDep) -> PdfResponse:
    """The fulfillment's printable shipping label: sender, recipient address, shipping
    provider, the tracking number as a Code 128 barcode and as text, and a BULKY mark when
    the shipment is. A label exists from shipping init on (a fulfillment is what shipping
    init creates): 404 before, as for another tenant's fulfillment. A canceled fulfillment's
    label is still served, crossed out as not to be shipped."""
    label = await usecases.label_of(runtime.pool, tenant, fulfillment_id)
    return PdfResponse(
        labels.render(label),  # about 3 ms of CPU: not worth a thread
        headers={
            "Content-Disposition": f'inline; filename="label-{label.tracking_number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/fulfillments/status", response_model=StatusUpdatesOut)
async def change_statuses(
    body: StatusUpdatesIn, tenant: TenantId, actor: Actor, runtime: RuntimeDep, resources: Resources
) -> StatusUpdatesOut:
    """Move up to 100 fulfillments forward, each as `POST /fulfillments/{id}/status` would.
    Those that cannot move are listed in `errors` (`not_found`, or `conflict` for a move
    backwards or a sale that cannot ship) while the others proceed."""
    updates = [usecases.StatusUpdate(u.id, u.status) for u in body.updates]
    with orders_answers():
        outcome = await usecases.update_fulfillment_statuses(
            runtime.pool, resources.orders, tenant, actor, updates, settled=resources.settled
        )
    return StatusUpdatesOut(
        fulfillments=[fulfillment_out(f) for f in outcome.fulfillments],
        errors=[refusal_out(r, "id") for r in outcome.refused],
    )


@router.post("/fulfillments/{fulfillment_id}/status", response_model=FulfillmentOut)
async def change_status(
    fulfillment_id: str,
    body: StatusIn,
    tenant: TenantId,
    actor: Actor,
    runtime: RuntimeDep,
    resources: Resources,
) -> FulfillmentOut:
    """Move a fulfillment forward. `shipped` first asks `orders` to ship the sale (its part
    at this fulfillment's location: a split sale is shipped with its last part), so a
    canceled sale is refused (409) and never leaves the warehouse."""
    with orders_answers():
        outcome = await usecases.update_fulfillment_statuses(
            runtime.pool,
            resources.orders,
            tenant,
            actor,
            [usecases.StatusUpdate(fulfillment_id, body.status)],
            settled=resources.settled,
        )
    for refused in outcome.refused:
        if refused.code == "not_found":
            raise NotFound(refused.detail)
        raise Conflict(refused.detail, **refused.extra)
    [moved] = outcome.fulfillments
    return fulfillment_out(moved)
