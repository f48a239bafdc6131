from pathlib import Path

from fulfilkit.notify import Waiter
from fulfilkit.service import Runtime, ServiceSpec, create_service
from orders.api import internal, router
from orders.changes import STATUS_CHANNEL
from orders.handlers import CONSUMERS
from orders.settings import OrdersSettings


async def start_waiter(runtime: Runtime) -> None:
    waiter = Waiter(runtime.pool, STATUS_CHANNEL)
    await waiter.start()
    runtime.extras["waiter"] = waiter


async def stop_waiter(runtime: Runtime) -> None:
    await runtime.extras["waiter"].stop()


app = create_service(
    ServiceSpec(
        name="orders",
        settings=OrdersSettings(),
        migrations=Path(__file__).with_name("migrations"),
        routers=[router, internal],
        consumers=CONSUMERS,
        on_start=start_waiter,
        on_stop=stop_waiter,
    ),
    title="Fulfil orders service",
)
