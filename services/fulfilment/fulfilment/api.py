"""Fulfilment REST routes: shipping init and reading fulfillments."""

import uuid
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from fulfilkit.events import utcnow
from fulfilkit.http.internal import Actor, TenantId
from fulfilkit.http.problems import Problem
from fulfilkit.outbox import add_events
from fulfilkit.service import Pool, Runtime, RuntimeDep
from fulfilment import events, store
from fulfilment.domain import Fulfillment, choose_provider, fulfillment_number
from fulfilment.providers import PROVIDERS

router = APIRouter(prefix="/api/v1/fulfillment", tags=["fulfillment"])

SaleId = Annotated[str, Field(min_length=1, max_length=64)]


class ShippingInitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sale_ids: Annotated[list[SaleId], Field(min_length=1, max_length=100)]


class ShippingInitOut(BaseModel):
    fulfillments: list[dict[str, Any]]
    errors: list[dict[str, Any]]


async def create_fulfillments(
    runtime: Runtime, tenant: UUID, claimed: list[dict[str, Any]]
) -> list[Fulfillment]:
    """One fulfillment per claimed sale, written with its event in one transaction."""
    settings = runtime.settings
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for sale in claimed:
        provider = choose_provider(settings.shipping_provider_rules, sale["location_id"],  # type: ignore[attr-defined]
                                   sale["shop"]["channel"], settings.default_shipping_provider)  # type: ignore[attr-defined]
        by_provider.setdefault(provider, []).append(sale)
    now = utcnow()
    async with runtime.pool.acquire() as conn, conn.transaction():
        created: list[Fulfillment] = []
        for name, sales in by_provider.items():
            numbers = await PROVIDERS[name].allocate(conn, len(sales))
            for sale, number in zip(sales, numbers, strict=True):
                fid = uuid.uuid4()
                created.append(Fulfillment(
                    id=fid, tenant_id=tenant, fulfillment_id=fulfillment_number(fid),
                    sale=UUID(sale["id"]), sale_id=sale["sale_id"], location=sale["location_id"],
                    status="waiting_for_picking", shipping_provider=name,
                    tracking_number=number, is_bulky=False, version=1, date_created=now,
                ))
        added = set(await store.insert_many(conn, created))
        created = [f for f in created if f.id in added]
        await add_events(conn, "fulfilment", [events.fulfillment_created(f) for f in created])
    return created


@router.post("/shipping/init", response_model=ShippingInitOut)
async def shipping_init(
    body: ShippingInitIn, tenant: TenantId, actor: Actor, runtime: RuntimeDep
) -> ShippingInitOut:
    """Claim each pending sale for shipping and give it a fulfillment; report the others."""
    sale_ids = list(dict.fromkeys(body.sale_ids))
    async with runtime.pool.acquire() as conn:
        existing = await store.live_by_sale_ids(conn, tenant, sale_ids)
    to_claim = [s for s in sale_ids if s not in existing]
    claimed: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    if to_claim:
        answer = await runtime.extras["orders"].claim(tenant, actor, to_claim)
        claimed, errors = answer["claimed"], answer["errors"]
    for f in await create_fulfillments(runtime, tenant, claimed):
        existing[f.sale_id] = f
    fulfillments = [events.snapshot(existing[s]).model_dump(mode="json")
                    for s in sale_ids if s in existing]
    return ShippingInitOut(fulfillments=fulfillments, errors=errors)


@router.get("/fulfillments/{fulfillment_id}")
async def get_fulfillment(fulfillment_id: str, tenant: TenantId, pool: Pool) -> dict[str, Any]:
    try:
        key = UUID(fulfillment_id)
    except ValueError:
        raise Problem("no_content", f"No fulfillment {fulfillment_id!r}.") from None
    async with pool.acquire() as conn:
        found = await store.get(conn, tenant, key)
    if found is None:
        raise Problem("no_content", f"No fulfillment {fulfillment_id!r}.")
    return events.snapshot(found).model_dump(mode="json")
