"""What orders opens beyond its pool and broker, and how routes and loops reach it."""

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from fulfilkit.notify import Waiter
from fulfilkit.service import Runtime
from orders import store
from orders.settings import OrdersSettings


@dataclass(frozen=True)
class OrdersResources:
    # wakes a create request when its sales' reservation outcomes are committed, on any replica
    waiter: Waiter
    create_wait_seconds: float  # how long a create request waits for them
    # how long a create waits for a SKU its catalogue copy lacks (created a moment ago?)
    catalogue_wait_seconds: float


@asynccontextmanager
async def open_resources(runtime: Runtime[Any]) -> AsyncIterator[OrdersResources]:
    pool = runtime.pool

    async def settled(sale_ids: Collection[str]) -> list[str]:
        async with pool.acquire() as conn:
            return await store.settled(conn, sale_ids)

    settings = runtime.settings
    assert isinstance(settings, OrdersSettings)
    yield OrdersResources(
        waiter=Waiter(pool, store.STATUS_CHANNEL, settled),
        create_wait_seconds=settings.sale_create_wait_seconds,
        catalogue_wait_seconds=settings.sale_catalogue_wait_seconds,
    )


async def run_waiter(runtime: Runtime[OrdersResources]) -> None:
    await runtime.resources.waiter.run()


async def get_resources(request: Request) -> OrdersResources:
    return request.app.state.runtime.resources


Resources = Annotated[OrdersResources, Depends(get_resources)]
