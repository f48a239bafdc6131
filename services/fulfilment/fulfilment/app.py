from pathlib import Path

from fastapi import FastAPI

from fulfilkit.http.client import internal_session
from fulfilkit.service import Runtime, ServiceDefinition, create_service
from fulfilment.api import router
from fulfilment.handlers import CONSUMERS
from fulfilment.orders_client import OrdersClient
from fulfilment.settings import FulfilmentSettings


async def open_orders_client(runtime: Runtime) -> None:
    settings: FulfilmentSettings = runtime.settings  # type: ignore[assignment]
    session = internal_session(100, settings.orders_timeout_seconds)
    runtime.extras["session"] = session
    runtime.extras["orders"] = OrdersClient(session, settings.orders_url, settings.internal_token)


async def close_orders_client(runtime: Runtime) -> None:
    await runtime.extras["session"].close()


def create_app(settings: FulfilmentSettings | None = None) -> FastAPI:
    return create_service(
        ServiceDefinition(
            name="fulfilment",
            settings=settings or FulfilmentSettings(),
            migrations=Path(__file__).with_name("migrations"),
            routers=[router],
            consumers=CONSUMERS,
            on_start=open_orders_client,
            on_stop=close_orders_client,
        ),
        title="Fulfil fulfilment service",
    )
