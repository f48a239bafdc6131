from pathlib import Path

from fulfilkit.http.client import internal_session
from fulfilkit.service import Runtime, ServiceSpec, create_service
from fulfilment.api import router
from fulfilment.handlers import CONSUMERS
from fulfilment.orders_client import OrdersClient
from fulfilment.settings import FulfilmentSettings

settings = FulfilmentSettings()


async def open_orders_client(runtime: Runtime) -> None:
    session = internal_session(100, settings.orders_timeout_seconds)
    runtime.extras["session"] = session
    runtime.extras["orders"] = OrdersClient(session, settings.orders_url, settings.internal_token)


async def close_orders_client(runtime: Runtime) -> None:
    await runtime.extras["session"].close()


app = create_service(
    ServiceSpec(
        name="fulfilment",
        settings=settings,
        migrations=Path(__file__).with_name("migrations"),
        routers=[router],
        consumers=CONSUMERS,
        on_start=open_orders_client,
        on_stop=close_orders_client,
    ),
    title="Fulfil fulfilment service",
)
