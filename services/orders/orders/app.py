from collections.abc import Collection
from pathlib import Path

from fastapi import FastAPI

from fulfilkit.notify import Waiter
from fulfilkit.service import Runtime, ServiceDefinition, create_service
from orders.api import internal, router
from orders.changes import STATUS_CHANNEL
from orders.handlers import CONSUMERS
from orders.settings import OrdersSettings


async def start_waiter(runtime: Runtime) -> None:
    async def settled(sale_ids: Collection[str]) -> list[str]:
        """The sales whose reservation outcome is in (the wake-up's key is the sale's id)."""
        rows = await runtime.pool.fetch(
            "SELECT id::text FROM orders.sales"
            " WHERE id = ANY($1::uuid[]) AND status <> 'awaiting_stock'",
            list(sale_ids),
        )
        return [r["id"] for r in rows]

    runtime.extras["waiter"] = Waiter(runtime.pool, STATUS_CHANNEL, settled)


async def run_waiter(runtime: Runtime) -> None:
    await runtime.extras["waiter"].run()


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    return create_service(
        ServiceDefinition(
            name="orders",
            settings=settings or OrdersSettings(),
            migrations=Path(__file__).with_name("migrations"),
            routers=[router, internal],
            consumers=CONSUMERS,
            background=[run_waiter],
            on_start=start_waiter,
        ),
        title="Fulfil orders service",
    )
