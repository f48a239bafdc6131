"""Wiring: `uvicorn webhooks.app:create_app --factory`."""

from pathlib import Path

from fastapi import FastAPI

from fulfilkit.contracts import (
    EVENT_TYPES,
    FULFILLMENT_TOPIC,
    SALES_TOPIC,
    STOCK_TOPIC,
    WEBHOOKS_TOPIC,
)
from fulfilkit.idempotency import keep_keys_bounded
from fulfilkit.service import Consumer, Runtime, ServiceDefinition, create_service
from webhooks.api import router
from webhooks.dispatcher import run_dispatcher
from webhooks.handlers import deliveries_from_events
from webhooks.reseal import start_sealer
from webhooks.retention import run_pruner
from webhooks.sender import start_sender
from webhooks.settings import WebhookSettings

MIGRATIONS = Path(__file__).with_name("migrations")
DISPATCHER_RAN = "webhooks.dispatcher_ran"


async def dispatcher(runtime: Runtime) -> None:
    """`run_dispatcher`, started again by its supervisor whenever it fails. It closes the
    shared sender when it ends, so every run after the first opens a new one."""
    if runtime.extras.get(DISPATCHER_RAN):
        await start_sender(runtime)
    runtime.extras[DISPATCHER_RAN] = True
    await run_dispatcher(runtime)


async def _start(runtime: Runtime) -> None:
    await start_sealer(runtime)
    await start_sender(runtime)


def create_app(settings: WebhookSettings | None = None) -> FastAPI:
    return create_service(
        ServiceDefinition(
            name="webhooks",
            settings=settings or WebhookSettings(),
            migrations=MIGRATIONS,
            routers=[router],
            consumers=[
                Consumer(
                    topics=[SALES_TOPIC, STOCK_TOPIC, FULFILLMENT_TOPIC, WEBHOOKS_TOPIC],
                    event_types=EVENT_TYPES,
                    apply=deliveries_from_events,
                )
            ],
            background=[dispatcher, run_pruner, keep_keys_bounded],
            on_start=_start,
        ),
        title="Fulfil webhooks",
    )
