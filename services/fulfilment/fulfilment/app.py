from pathlib import Path

from fastapi import FastAPI

from fulfilkit.service import ServiceDefinition, create_service
from fulfilment.api import router
from fulfilment.handlers import consumers
from fulfilment.resources import opener
from fulfilment.settings import FulfilmentSettings
from fulfilment.settled import Settled


def create_app(settings: FulfilmentSettings | None = None) -> FastAPI:
    settled = Settled()  # what the requests committed, for the consumer to skip
    return create_service(
        ServiceDefinition(
            name="fulfilment",
            settings=settings or FulfilmentSettings(),
            migrations=Path(__file__).with_name("migrations"),
            routers=[router],
            consumers=consumers(settled),
            resources=opener(settled),
        ),
        title="Fulfil fulfilment service",
    )
