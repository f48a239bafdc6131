"""Wiring: `uvicorn webhooks.app:create_app --factory`."""

from pathlib import Path

from fastapi import FastAPI

from fulfilkit.idempotency import keep_keys_bounded
from fulfilkit.service import ServiceDefinition, create_service
from webhooks.api import router
from webhooks.dispatcher import run_dispatcher, run_listener
from webhooks.handlers import CONSUMERS
from webhooks.resources import open_resources
from webhooks.retention import run_pruner
from webhooks.settings import WebhookSettings

MIGRATIONS = Path(__file__).with_name("migrations")


def create_app(settings: WebhookSettings | None = None) -> FastAPI:
    return create_service(
        ServiceDefinition(
            name="webhooks",
            settings=settings or WebhookSettings(),
            migrations=MIGRATIONS,
            routers=[router],
            consumers=CONSUMERS,
            background=[run_dispatcher, run_listener, run_pruner, keep_keys_bounded],
            resources=open_resources,
        ),
        title="Fulfil webhooks",
    )
