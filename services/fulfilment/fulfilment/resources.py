"""What fulfilment opens at start beyond its pool and broker: the client of `orders`, and
the memory of what this process committed (`fulfilment.settled`), shared with its consumer."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Request

from fulfilkit.http.client import internal_session
from fulfilkit.service import OpenResources, Runtime
from fulfilment.orders_client import OrdersClient
from fulfilment.settings import FulfilmentSettings
from fulfilment.settled import Settled

ORDERS_MAX_CONNECTIONS = 100


@dataclass(frozen=True)
class FulfilmentResources:
    orders: OrdersClient
    settled: Settled


def opener(settled: Settled) -> OpenResources:
    """What opens the resources of one app, whose consumer reads `settled`."""

    @asynccontextmanager
    async def open_resources(runtime: Runtime[Any]) -> AsyncIterator[FulfilmentResources]:
        settings = cast(FulfilmentSettings, runtime.settings)
        session = internal_session(ORDERS_MAX_CONNECTIONS, settings.orders_timeout_seconds)
        try:
            yield FulfilmentResources(
                orders=OrdersClient(session, settings.orders_url, settings.internal_token),
                settled=settled,
            )
        finally:
            await session.close()

    return open_resources


async def get_resources(request: Request) -> FulfilmentResources:
    return request.app.state.runtime.resources


Resources = Annotated[FulfilmentResources, Depends(get_resources)]
