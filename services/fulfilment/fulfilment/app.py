from pathlib import Path

from fastapi import FastAPI

from fulfilkit.service import ServiceDefinition, create_service
from fulfilment.api import router
from fulfilment.handlers import CONSUMERS
from fulfilment.resources import open_resources
from fulfilment.settings import FulfilmentSettings


def create_app(settings: FulfilmentSettings | None = None) -> FastAPI:
    return create_service(
        ServiceDefinition(
            name="fulfilment",
            settings=settings or FulfilmentSettings(),
            migrations=Path(__file__).with_name("migrations"),
            routers=[router],
            consumers=CONSUMERS,
            resources=open_resources,
        ),
        title="Fulfil fulfilment service",
    )
