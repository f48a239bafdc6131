from pathlib import Path

from fastapi import FastAPI

from fulfilkit.idempotency import keep_keys_bounded
from fulfilkit.service import ServiceDefinition, create_service
from orders.api import internal, router
from orders.api_returns import router as returns_router
from orders.handlers import CONSUMERS
from orders.resources import open_resources, run_waiter
from orders.settings import OrdersSettings


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    return create_service(
        ServiceDefinition(
            name="orders",
            settings=settings or OrdersSettings(),
            migrations=Path(__file__).with_name("migrations"),
            routers=[router, returns_router, internal],
            consumers=CONSUMERS,
            background=[run_waiter, keep_keys_bounded],
            resources=open_resources,
        ),
        title="Fulfil orders service",
    )
