"""Wiring: `uvicorn webhooks.app:create_app --factory`."""

from pathlib import Path

from fastapi import FastAPI

from fulfilkit.idempotency import keep_keys_bounded
from fulfilkit.metrics import GaugeQuery
from fulfilkit.service import ServiceDefinition, create_service
from webhooks.api import router
from webhooks.deliverers import run_delivery_processes
from webhooks.dispatcher import run_dispatcher, run_listener
from webhooks.handlers import CONSUMERS
from webhooks.resources import open_resources
from webhooks.retention import run_pruner
from webhooks.settings import WebhookSettings

GAUGES = [
    GaugeQuery(
        "fulfil_webhooks_pending_deliveries",
        "Webhook deliveries not yet succeeded or failed for good",
        "SELECT count(*) FROM webhooks.deliveries WHERE status = 'pending'",
    ),
    GaugeQuery(
        "fulfil_webhooks_oldest_pending_age_seconds",
        "Age of the oldest pending webhook delivery (0 when there is none)",
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)"
        " FROM webhooks.deliveries WHERE status = 'pending'",
    ),
    GaugeQuery(
        "fulfil_webhooks_disabled_endpoints",
        "Webhook endpoints disabled (by their owner or after failing for too long)",
        "SELECT count(*) FROM webhooks.endpoints WHERE NOT enabled",
    ),
]

MIGRATIONS = Path(__file__).with_name("migrations")


def create_app(settings: WebhookSettings | None = None) -> FastAPI:
    settings = settings or WebhookSettings()
    # Deliveries are sent by this process's dispatcher and by those of its delivery processes.
    sending = [run_dispatcher, run_listener]
    if settings.webhook_delivery_processes:
        sending.append(run_delivery_processes)
    return create_service(
        ServiceDefinition(
            name="webhooks",
            settings=settings,
            migrations=MIGRATIONS,
            routers=[router],
            consumers=CONSUMERS,
            background=[*sending, run_pruner, keep_keys_bounded],
            resources=open_resources,
            gauges=GAUGES,
        ),
        title="Fulfil webhooks",
    )
