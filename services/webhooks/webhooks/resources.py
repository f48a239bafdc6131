"""What the webhooks service opens at start: the secret sealer, the HTTP sender shared by the
API (URL checks, test pings) and the dispatcher, the signal that deliveries are due, and its
delivery processes."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from fulfilkit.service import Runtime
from webhooks.deliverers import DeliveryProcesses, delivery_processes
from webhooks.handoff import Handoff
from webhooks.reseal import reseal
from webhooks.sealing import SecretSealer
from webhooks.sender import Sender
from webhooks.settings import WebhookSettings
from webhooks.store import NOTIFY_CHANNEL
from webhooks.wakeup import NotifyListener

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resources:
    settings: WebhookSettings
    sealer: SecretSealer
    # Open for the service's lifetime: the dispatcher borrows it, so a restarted dispatcher
    # finds it open.
    sender: Sender
    # Set by the LISTEN loop (and by the dispatcher itself) when deliveries may be due.
    deliveries_due: asyncio.Event
    # The LISTEN loop (run by `dispatcher.run_listener`); the dispatcher sleeps longer while
    # it is connected.
    listener: NotifyListener
    # From the consumer to the dispatcher of this process (`webhooks.handoff`).
    handoff: Handoff
    # Processes of their own that claim and send deliveries too (`webhooks.deliverers`).
    delivery_processes: DeliveryProcesses | None = field(default=None)


def webhook_settings(runtime: Runtime[Any]) -> WebhookSettings:
    assert isinstance(runtime.settings, WebhookSettings)
    return runtime.settings


@asynccontextmanager
async def open_resources(runtime: Runtime[Any]) -> AsyncIterator[Resources]:
    """Seals the secrets still stored in plaintext (saved before encryption at rest) first."""
    settings = webhook_settings(runtime)
    sealer = SecretSealer(settings.secret_keys)
    if sealed := await reseal(runtime.pool, sealer, plaintext_only=True):
        log.info("encrypted %d stored webhook secrets", sealed)
    sender = Sender(settings)
    processes = delivery_processes(settings)
    try:
        await processes.start()
        due = asyncio.Event()
        listener = NotifyListener(settings.database_url, NOTIFY_CHANNEL, due.set)
        handoff = Handoff(sealer, settings.webhook_lease_seconds)
        yield Resources(settings, sealer, sender, due, listener, handoff, processes)
    finally:
        await processes.stop()
        await sender.close()


async def _resources(request: Request) -> Resources:
    return request.app.state.runtime.resources


WebhookResources = Annotated[Resources, Depends(_resources)]
