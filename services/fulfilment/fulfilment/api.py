"""Fulfilment REST routes: shipping init, fulfillment status, reading fulfillments."""

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from fulfilkit.db import in_transaction
from fulfilkit.faults import crash_point
from fulfilkit.http.internal import Actor, TenantId
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.models import StrictModel, Text, code_error
from fulfilkit.service import Pool, RuntimeDep
from fulfilment import events, store
from fulfilment.domain import why_not
from fulfilment.progress import move_many
from fulfilment.shipping import ensure_fulfillments, move, move_unless_changed

router = APIRouter(prefix="/api/v1/fulfillment", tags=["fulfillment"], route_class=StrictJsonRoute)

MAX_BATCH = 100
# Items of a batch are only checked for what makes them JSON text: an id no sale or
# fulfillment can have is reported on its own item, and the rest of the batch proceeds.
BatchItemId = Annotated[Text, Field(max_length=1000)]


class ShippingInitIn(StrictModel):
    sale_ids: Annotated[list[BatchItemId], Field(min_length=1, max_length=MAX_BATCH)]


class ShippingInitOut(BaseModel):
    fulfillments: list[dict[str, Any]]
    errors: list[dict[str, Any]]


Target = Literal["picking", "packed", "shipped", "delivered"]


class StatusIn(StrictModel):
    status: Target


class StatusUpdate(StrictModel):
    id: BatchItemId
    status: Target


def _fulfillment_id(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


class StatusUpdatesIn(StrictModel):
    updates: Annotated[list[StatusUpdate], Field(min_length=1, max_length=MAX_BATCH)]

    @field_validator("updates")
    @classmethod
    def _each_once(cls, updates: list[StatusUpdate]) -> list[StatusUpdate]:
        if len({_fulfillment_id(u.id) or u.id for u in updates}) != len(updates):
            raise ValueError("each fulfillment may appear only once")
        return updates


class StatusUpdatesOut(BaseModel):
    fulfillments: list[dict[str, Any]]
    errors: list[dict[str, Any]]


@router.post("/shipping/init", response_model=ShippingInitOut)
async def shipping_init(
    body: ShippingInitIn, tenant: TenantId, actor: Actor, runtime: RuntimeDep
) -> ShippingInitOut:
    """Claim each pending sale for shipping and give it a fulfillment; report the others.

    Calling it again for the same sales returns the fulfillments they already have.
    """
    sale_ids = list(dict.fromkeys(body.sale_ids))
    errors: list[dict[str, Any]] = [
        {"sale_id": s, "code": "validation", "detail": f"A sale_id {error}."}
        for s in sale_ids
        if (error := code_error(s)) is not None
    ]
    sale_ids = [s for s in sale_ids if code_error(s) is None]
    async with runtime.pool.acquire() as conn:
        live = await store.by_sale_ids(conn, tenant, sale_ids)
    to_claim = [s for s in sale_ids if s not in live]
    if to_claim:
        answer = await runtime.extras["orders"].claim(tenant, actor, to_claim)
        crash_point("fulfilment.after_claim")
        errors += answer["errors"]
        live |= await in_transaction(
            runtime.pool,
            lambda conn: ensure_fulfillments(conn, runtime.settings, tenant, answer["claimed"]),
        )  # type: ignore[arg-type]
    fulfillments = [events.snapshot(live[s]).model_dump(mode="json") for s in sale_ids if s in live]
    return ShippingInitOut(fulfillments=fulfillments, errors=errors)


def _fulfillment_key(fulfillment_id: str) -> UUID:
    if (key := _fulfillment_id(fulfillment_id)) is None:
        raise Problem("no_content", f"No fulfillment {fulfillment_id!r}.")
    return key


@router.get("/fulfillments/{fulfillment_id}")
async def get_fulfillment(fulfillment_id: str, tenant: TenantId, pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        found = await store.get(conn, tenant, _fulfillment_key(fulfillment_id))
    if found is None:
        raise Problem("no_content", f"No fulfillment {fulfillment_id!r}.")
    return events.snapshot(found).model_dump(mode="json")


@router.post("/fulfillments/status", response_model=StatusUpdatesOut)
async def change_statuses(
    body: StatusUpdatesIn, tenant: TenantId, actor: Actor, runtime: RuntimeDep
) -> StatusUpdatesOut:
    """Move up to 100 fulfillments forward, each as `POST /fulfillments/{id}/status` would.
    Those that cannot move are listed in `errors` (`not_found`, or `conflict` for a move
    backwards or a sale that cannot ship) while the others proceed."""
    targets = [(fid, u.status) for u in body.updates if (fid := _fulfillment_id(u.id)) is not None]
    unknown = [
        {"id": u.id, "code": "not_found", "detail": f"No fulfillment {u.id!r}."}
        for u in body.updates
        if _fulfillment_id(u.id) is None
    ]
    outcome = await move_many(
        runtime.pool,
        runtime.extras["orders"],
        tenant,
        actor,
        targets,
        after_orders=lambda: crash_point("fulfilment.after_ship_call"),
    )
    return StatusUpdatesOut(
        fulfillments=[events.snapshot(f).model_dump(mode="json") for f in outcome.moved],
        errors=unknown + outcome.errors,
    )


@router.post("/fulfillments/{fulfillment_id}/status")
async def change_status(
    fulfillment_id: str, body: StatusIn, tenant: TenantId, actor: Actor, runtime: RuntimeDep
) -> dict[str, Any]:
    """Move a fulfillment forward. `shipped` first asks `orders` to ship the sale, so a
    canceled sale is refused (409) and never leaves the warehouse."""
    key = _fulfillment_key(fulfillment_id)
    async with runtime.pool.acquire() as conn:
        found = await store.get(conn, tenant, key)
    if found is None:
        raise Problem("no_content", f"No fulfillment {fulfillment_id!r}.")
    _check(found.status, body.status)
    if body.status == "shipped":
        await runtime.extras["orders"].ship(tenant, actor, found.sale_id)
        crash_point("fulfilment.after_ship_call")
    moved = await move_unless_changed(runtime.pool, found, body.status)  # checked above
    if moved is None:  # changed since it was read: decide again under the row's lock
        async with runtime.pool.acquire() as conn, conn.transaction():
            moved = await store.lock(conn, tenant, key)
            assert moved is not None
            _check(moved.status, body.status)
            await move(conn, [moved], body.status)
    return events.snapshot(moved).model_dump(mode="json")


def _check(current: str, target: str) -> None:
    if (why := why_not(current, target)) is not None:
        raise Problem("conflict", why, fulfillment_status=current)
