"""Wiring: settings, pool and migrations (via fulfilkit), the gateway's resources, the
middleware of the public, self-service and admin API, routes (the console's too), the pruners
of idempotency records, access tokens and console sessions, and the listener for
revocations."""

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from fulfilkit.idempotency import keep_keys_bounded
from fulfilkit.retention import prune_every
from fulfilkit.service import Runtime, ServiceDefinition, create_service
from gateway import usecases
from gateway.admin_guard import AdminGuardMiddleware
from gateway.api import admin_router, docs_router, oauth_router, self_service_router
from gateway.console import store as console_store
from gateway.console.pages import ConsoleHeadersMiddleware
from gateway.console.routes import router as console_router
from gateway.forwarding import ForwardingMiddleware
from gateway.openapi import TITLE, VERSION
from gateway.resources import GatewayResources, open_resources
from gateway.self_service_guard import SelfServiceGuardMiddleware
from gateway.settings import GatewaySettings
from gateway.versions import ApiVersionCheckMiddleware, ApiVersionHeaderMiddleware

MIGRATIONS = Path(__file__).with_name("migrations")
PRUNE_INTERVAL_SECONDS = 600.0


async def prune_idempotency_records(runtime: Runtime[GatewayResources]) -> None:
    ttl = runtime.resources.idempotency.ttl
    await prune_every(
        PRUNE_INTERVAL_SECONDS,
        lambda: usecases.prune_idempotency_records(runtime.pool, ttl),
        "expired idempotency records",
    )


async def prune_access_tokens(runtime: Runtime[GatewayResources]) -> None:
    await prune_every(
        PRUNE_INTERVAL_SECONDS,
        lambda: usecases.prune_access_tokens(runtime.pool),
        "expired access tokens",
    )


async def prune_console_sessions(runtime: Runtime[GatewayResources]) -> None:
    idle = timedelta(minutes=runtime.resources.settings.console_idle_minutes)
    await prune_every(
        PRUNE_INTERVAL_SECONDS,
        lambda: console_store.prune_sessions(runtime.pool, idle),
        "expired console sessions",
    )


async def listen_for_revocations(runtime: Runtime[GatewayResources]) -> None:
    await runtime.resources.revocations.run()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    definition = ServiceDefinition(
        name="gateway",
        settings=settings or GatewaySettings(),
        migrations=MIGRATIONS,
        routers=[admin_router, oauth_router, self_service_router, docs_router, console_router],
        # each wraps those before it: forwarded requests never reach the self-service guard,
        # and the version check wraps every door, so a bad version is refused before anything
        middleware=[
            SelfServiceGuardMiddleware,
            ForwardingMiddleware,
            AdminGuardMiddleware,
            ApiVersionCheckMiddleware,
            ConsoleHeadersMiddleware,  # every answer under /console: CSP, no framing, no-store
        ],
        background=[
            prune_idempotency_records,
            keep_keys_bounded,  # the self-service creates' keys (`gateway.idempotent_requests`)
            prune_access_tokens,
            prune_console_sessions,
            listen_for_revocations,
        ],
        uses_kafka=False,
        resources=open_resources,
    )
    app = create_service(
        definition, title=TITLE, version=VERSION, openapi_url=None, docs_url=None, redoc_url=None
    )
    # Outside every middleware create_service adds (the unhandled-error one's 500 included):
    # every answer says which API version it speaks.
    app.add_middleware(ApiVersionHeaderMiddleware)
    return app
