"""Wiring: settings, pool and migrations (via fulfilkit), the shared HTTP session, routes."""

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from fulfilkit.asyncapi import events_document
from fulfilkit.http.client import internal_session
from fulfilkit.service import Runtime, ServiceDefinition, create_service
from gateway import store
from gateway.admin_guard import AdminGuardMiddleware
from gateway.api import STATE_KEY, GatewayState, admin_router, docs_router
from gateway.auth import KeyCache
from gateway.forwarding import ForwardingMiddleware
from gateway.openapi import TITLE, VERSION, PublicApiDocument
from gateway.proxy import Forwarder, IdempotencyPolicy, upstream_urls
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
PRUNE_INTERVAL_SECONDS = 600.0


def _idempotency_policy(settings: GatewaySettings) -> IdempotencyPolicy:
    return IdempotencyPolicy(
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
        forward_again_after=timedelta(seconds=settings.idempotency_forward_again_seconds),
    )


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    policy = _idempotency_policy(settings)

    async def start(runtime: Runtime) -> None:
        session = internal_session(
            settings.upstream_max_connections, settings.upstream_timeout_seconds
        )
        services = upstream_urls(settings)
        own_document = get_openapi(title=TITLE, version=VERSION, routes=admin_router.routes)
        runtime.extras[STATE_KEY] = GatewayState(
            settings=settings,
            pool=runtime.pool,
            session=session,
            keys=KeyCache(
                runtime.pool,
                settings.api_key_cache_seconds,
                max_entries=settings.api_key_cache_size,
                max_missing=settings.api_key_negative_cache_size,
            ),
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            unauthenticated=RateLimiter(
                settings.unauthenticated_rate_limit_per_second,
                settings.unauthenticated_rate_limit_burst,
            ),
            admin_failures=RateLimiter(
                settings.admin_failures_per_minute / 60, settings.admin_failures_burst
            ),
            forwarder=Forwarder(
                session, services, settings.internal_token, settings.public_base_url
            ),
            idempotency=policy,
            public_api=PublicApiDocument(
                session, services, own_document, settings.openapi_cache_seconds
            ),
            events_api=orjson.dumps(events_document(settings.kafka_bootstrap_servers, VERSION)),
        )

    async def stop(runtime: Runtime) -> None:
        state: GatewayState = runtime.extras.pop(STATE_KEY)
        await state.session.close()

    async def prune_idempotency_records(runtime: Runtime) -> None:
        while True:
            try:
                pruned = await store.prune_idempotency_keys(runtime.pool, policy.ttl)
                if pruned:
                    log.info("pruned %d expired idempotency records", pruned)
            except Exception:
                log.exception("pruning idempotency records failed")
            await asyncio.sleep(PRUNE_INTERVAL_SECONDS)

    spec = ServiceDefinition(
        name="gateway",
        settings=settings,
        migrations=MIGRATIONS,
        routers=[admin_router, docs_router],
        middleware=[ForwardingMiddleware, AdminGuardMiddleware],
        background=[prune_idempotency_records],
        uses_kafka=False,
        on_start=start,
        on_stop=stop,
    )
    return create_service(
        spec, title=TITLE, version=VERSION, openapi_url=None, docs_url=None, redoc_url=None
    )
