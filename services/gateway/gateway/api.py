"""HTTP routes: the admin API and the docs (the rest of /api/v1 is forwarded by
`gateway.forwarding`), and the API version check both use."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from uuid import UUID

import aiohttp
import asyncpg
import orjson
from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, StringConstraints

from fulfilkit.http.openapi import problems
from fulfilkit.http.problems import Problem
from fulfilkit.models import Text
from gateway import store
from gateway.auth import (
    DEFAULT_SCOPES,
    KeyCache,
    ScopeName,
    invalid_token,
    is_admin,
    new_api_key,
)
from gateway.openapi import TITLE, PublicApiDocument
from gateway.proxy import Forwarder, IdempotencyPolicy
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings

STATE_KEY = "gateway"
SUPPORTED_VERSIONS = frozenset({"v1"})


@dataclass
class GatewayState:
    """What the routes share; built on startup and kept in the runtime's extras."""

    settings: GatewaySettings
    pool: asyncpg.Pool
    session: aiohttp.ClientSession
    keys: KeyCache
    limiter: RateLimiter  # per API key
    unauthenticated: RateLimiter  # per client address, requests without a valid key
    admin_failures: RateLimiter  # per client address, failed admin-token attempts
    forwarder: Forwarder
    idempotency: IdempotencyPolicy
    public_api: PublicApiDocument
    events_api: bytes  # the AsyncAPI document of the events, as JSON


# Dependencies are `async def` so that FastAPI runs them inline, not in its thread pool.
async def _state(request: Request) -> GatewayState:
    return request.app.state.runtime.extras[STATE_KEY]


State = Annotated[GatewayState, Depends(_state)]
Authorization = Annotated[str | None, Header(include_in_schema=False)]


async def check_api_version(
    x_api_version: Annotated[str | None, Header(description="Optional; only `v1` exists.")] = None,
) -> None:
    if x_api_version is not None and x_api_version.strip().lower() not in SUPPORTED_VERSIONS:
        raise Problem("invalid_request", f"Unknown API version {x_api_version!r}; use v1.")


async def _require_admin(state: State, authorization: Authorization = None) -> None:
    if not is_admin(authorization, state.settings.admin_token):
        raise invalid_token("This needs the admin token.", missing=authorization is None)


# --- admin -------------------------------------------------------------------------------

admin_router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    dependencies=[Depends(check_api_version), Depends(_require_admin)],
)
TenantName = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class NewTenant(BaseModel):
    name: TenantName
    scopes: list[ScopeName] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES),
        min_length=1,
        description="The first key's scopes; every scope but `admin` when left out.",
    )


class NewKey(BaseModel):
    scopes: list[ScopeName] = Field(min_length=1)


class TenantOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime


class CreatedTenant(BaseModel):
    tenant: TenantOut
    key_id: UUID
    api_key: str = Field(description="Shown only in this response; store it safely.")
    scopes: list[str]


class KeyOut(BaseModel):
    id: UUID
    tenant_id: UUID
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class CreatedKey(KeyOut):
    api_key: str = Field(description="Shown only in this response; store it safely.")


class KeyList(BaseModel):
    data: list[KeyOut]


def _key_out(key: store.ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        tenant_id=key.tenant_id,
        prefix=key.prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@admin_router.post("/tenants", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_tenant(body: NewTenant, state: State) -> CreatedTenant:
    """Creates a tenant and its first API key, with the scopes asked for (every scope but
    `admin` when none are given)."""
    key = new_api_key(body.scopes)
    try:
        tenant = await store.create_tenant(state.pool, body.name, key)
    except store.TenantNameTaken:
        raise Problem("duplicated", f"A tenant named {body.name!r} already exists.") from None
    return CreatedTenant(
        tenant=TenantOut(id=tenant.id, name=tenant.name, created_at=tenant.created_at),
        key_id=key.id,
        api_key=key.secret,
        scopes=list(key.scopes),
    )


@admin_router.post("/tenants/{tenant_id}/keys", status_code=status.HTTP_201_CREATED)
async def create_key(tenant_id: UUID, body: NewKey, state: State) -> CreatedKey:
    key = new_api_key(body.scopes)
    try:
        issued = await store.insert_key(state.pool, tenant_id, key)
    except asyncpg.ForeignKeyViolationError:
        raise Problem("no_content", "No such tenant.") from None
    return CreatedKey(**_key_out(issued).model_dump(), api_key=key.secret)


@admin_router.get("/tenants/{tenant_id}/keys")
async def list_keys(tenant_id: UUID, state: State) -> KeyList:
    """The tenant's keys, revoked ones included; secrets are never shown again."""
    if await store.find_tenant(state.pool, str(tenant_id)) is None:
        raise Problem("no_content", "No such tenant.")
    return KeyList(data=[_key_out(k) for k in await store.list_keys(state.pool, tenant_id)])


@admin_router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: UUID, state: State) -> Response:
    """Revokes a key at once in this gateway process, within API_KEY_CACHE_SECONDS in others."""
    if await store.revoke_key(state.pool, key_id) is None:
        raise Problem("no_content", "No such API key.")
    state.keys.forget(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- documentation -------------------------------------------------------------------------

docs_router = APIRouter(include_in_schema=False)


@docs_router.get("/openapi.json")
async def openapi_document(state: State) -> Response:
    return Response(orjson.dumps(await state.public_api.get()), media_type="application/json")


@docs_router.get("/asyncapi.json")
async def asyncapi_document(state: State) -> Response:
    """The events on Kafka: topics, partition keys, envelopes and `data` schemas."""
    return Response(state.events_api, media_type="application/json")


@docs_router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=TITLE)
