"""What the gateway opens at start beyond its pool: the HTTP session to the services and the
in-memory state every request shares (key cache, rate limits, documents)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, cast

import orjson
from fastapi import Depends, Request

from fulfilkit.asyncapi import events_document
from fulfilkit.http.client import internal_session
from fulfilkit.service import Runtime
from gateway.auth import KeyCache
from gateway.domain import IdempotencyPolicy
from gateway.openapi import VERSION, PublicApiDocument
from gateway.ratelimit import RateLimiter
from gateway.revocations import RevocationListener
from gateway.settings import GatewaySettings
from gateway.upstream import Forwarder, upstream_urls


@dataclass(frozen=True)
class GatewayResources:
    settings: GatewaySettings
    forwarder: Forwarder
    keys: KeyCache
    revocations: RevocationListener  # empties `keys` of what other processes revoke
    limiter: RateLimiter  # per API key
    unauthenticated: RateLimiter  # per client address, requests without a valid key
    admin_failures: RateLimiter  # per client address, failed admin-token attempts
    idempotency: IdempotencyPolicy
    public_api: PublicApiDocument
    events_api: bytes  # the AsyncAPI document of the events, as JSON


@asynccontextmanager
async def open_resources(runtime: Runtime[GatewayResources]) -> AsyncIterator[GatewayResources]:
    settings = cast(GatewaySettings, runtime.settings)
    session = internal_session(settings.upstream_max_connections, settings.upstream_timeout_seconds)
    services = upstream_urls(settings)
    keys = KeyCache(
        runtime.pool,
        settings.api_key_cache_seconds,
        max_entries=settings.api_key_cache_size,
        max_missing=settings.api_key_negative_cache_size,
    )
    try:
        yield GatewayResources(
            settings=settings,
            forwarder=Forwarder(
                session, services, settings.internal_token, settings.public_base_url
            ),
            keys=keys,
            revocations=RevocationListener(runtime.pool, keys),
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            unauthenticated=RateLimiter(
                settings.unauthenticated_rate_limit_per_second,
                settings.unauthenticated_rate_limit_burst,
            ),
            admin_failures=RateLimiter(
                settings.admin_failures_per_minute / 60, settings.admin_failures_burst
            ),
            idempotency=IdempotencyPolicy(
                ttl=timedelta(hours=settings.idempotency_ttl_hours),
                forward_again_after=timedelta(seconds=settings.idempotency_forward_again_seconds),
            ),
            public_api=PublicApiDocument(session, services, settings.openapi_cache_seconds),
            events_api=orjson.dumps(events_document(settings.kafka_bootstrap_servers, VERSION)),
        )
    finally:
        await session.close()


# `async def` so that FastAPI runs it inline, not in its thread pool.
async def _resources(request: Request) -> GatewayResources:
    return request.app.state.runtime.resources


Resources = Annotated[GatewayResources, Depends(_resources)]
