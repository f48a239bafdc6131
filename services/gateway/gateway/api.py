"""HTTP routes: the admin API and the docs (the rest of /api/v1 is forwarded by
`gateway.forwarding`)."""

import functools
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Header, Response, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from fulfilkit.http.openapi import problems
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.service import Pool
from gateway import usecases
from gateway.checks import check_api_version, invalid_token
from gateway.domain import ADMIN_PREFIX, is_admin
from gateway.openapi import TITLE, VERSION
from gateway.resources import Resources
from gateway.schemas import CreatedKey, CreatedTenant, KeyList, KeyOut, NewKey, NewTenant

Authorization = Annotated[str | None, Header(include_in_schema=False)]


# Dependencies are `async def` so that FastAPI runs them inline, not in its thread pool.
async def _api_version(
    x_api_version: Annotated[str | None, Header(description="Optional; only `v1` exists.")] = None,
) -> None:
    check_api_version(x_api_version)


async def _require_admin(resources: Resources, authorization: Authorization = None) -> None:
    if not is_admin(authorization, resources.settings.admin_token):
        raise invalid_token("This needs the admin token.", missing=authorization is None)


# --- admin -------------------------------------------------------------------------------

admin_router = APIRouter(
    prefix=ADMIN_PREFIX,
    tags=["admin"],
    dependencies=[Depends(_api_version), Depends(_require_admin)],
    route_class=StrictJsonRoute,
)


@admin_router.post("/tenants", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_tenant(body: NewTenant, pool: Pool) -> CreatedTenant:
    """Creates a tenant and its first API key, with the scopes asked for (every scope but
    `admin` when none are given)."""
    return CreatedTenant.of(await usecases.create_tenant(pool, body.name, body.scopes))


@admin_router.post("/tenants/{tenant_id}/keys", status_code=status.HTTP_201_CREATED)
async def create_key(tenant_id: UUID, body: NewKey, pool: Pool) -> CreatedKey:
    return CreatedKey.issued(await usecases.issue_key(pool, tenant_id, body.scopes))


@admin_router.get("/tenants/{tenant_id}/keys")
async def list_keys(tenant_id: UUID, pool: Pool) -> KeyList:
    """The tenant's keys, revoked ones included; secrets are never shown again."""
    return KeyList(data=[KeyOut.of(k) for k in await usecases.list_keys(pool, tenant_id)])


@admin_router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: UUID, pool: Pool, resources: Resources) -> Response:
    """Revokes a key at once in this gateway process, within API_KEY_CACHE_SECONDS in others."""
    await usecases.revoke_key(pool, key_id, resources.keys)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- documentation -------------------------------------------------------------------------

docs_router = APIRouter(include_in_schema=False)


@functools.cache
def _admin_document() -> dict[str, Any]:
    return get_openapi(title=TITLE, version=VERSION, routes=admin_router.routes)


@docs_router.get("/openapi.json")
async def openapi_document(resources: Resources) -> Response:
    document = await resources.public_api.get(_admin_document())
    return Response(orjson.dumps(document), media_type="application/json")


@docs_router.get("/asyncapi.json")
async def asyncapi_document(resources: Resources) -> Response:
    """The events on Kafka: topics, partition keys, envelopes and `data` schemas."""
    return Response(resources.events_api, media_type="application/json")


@docs_router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=TITLE)
