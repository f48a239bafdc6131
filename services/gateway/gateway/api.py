"""HTTP routes: the admin API and the docs (the rest of /api/v1 is forwarded by
`gateway.forwarding`)."""

import functools
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from fulfilkit import deadletters as dead_letter_store
from fulfilkit.http import deadletters as dl
from fulfilkit.http.openapi import problems
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.service import Pool
from gateway import usecases
from gateway.checks import invalid_token
from gateway.domain import (
    ADMIN_PREFIX,
    DeadLetterService,
    UpstreamCall,
    is_admin,
    with_public_origin,
)
from gateway.openapi import TITLE, VERSION
from gateway.resources import Resources
from gateway.schemas import CreatedKey, CreatedTenant, KeyList, KeyOut, NewKey, NewTenant

Authorization = Annotated[str | None, Header(include_in_schema=False)]


# Dependencies are `async def` so that FastAPI runs them inline, not in its thread pool.
# (The API version is checked for every /api path by `gateway.versions`.)
async def _require_admin(resources: Resources, authorization: Authorization = None) -> None:
    if not is_admin(authorization, resources.settings.admin_token):
        raise invalid_token("This needs the admin token.", missing=authorization is None)


# --- admin -------------------------------------------------------------------------------

admin_router = APIRouter(
    prefix=ADMIN_PREFIX,
    tags=["admin"],
    dependencies=[Depends(_require_admin)],
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


# --- dead letters: answered by the service named in `service` ------------------------------

Service = Annotated[
    DeadLetterService, Query(description="The service whose consumer gave up on the events.")
]
FilterText = Annotated[str | None, Query(max_length=300)]


async def _ask(
    resources: Resources,
    service: str,
    method: str,
    path: str = "",
    query: str = "",
    body: bytes = b"",
) -> Response:
    answer = await resources.forwarder.forward(
        UpstreamCall(
            service=service,
            method=method,
            path=dl.PREFIX + path,
            query=query,
            headers={"content-type": "application/json"} if body else {},
            body=body,
            tenant_id=None,
            actor="admin",
        )
    )
    return Response(
        answer.body,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type"),
    )


@admin_router.get("/dead-letters", response_model=dl.DeadLetterPageOut, responses=problems(422))
async def list_dead_letters(
    request: Request,
    resources: Resources,
    service: Service,
    consumer: FilterText = None,
    topic: FilterText = None,
    type: Annotated[
        str | None, Query(max_length=300, description="An event type, `sale.created` say.")
    ] = None,
    state: Literal["dead", "replayed"] | None = None,
    limit: Annotated[
        int, Query(ge=1, le=dead_letter_store.MAX_LIMIT)
    ] = dead_letter_store.DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=40, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    """Events the service's consumers gave up on (each also went to `<topic>.dlq`), oldest
    first, without their values; a `Link: rel="next"` header and `next_cursor` lead on."""
    filters = {"consumer": consumer, "topic": topic, "type": type, "state": state}
    query = {k: v for k, v in filters.items() if v is not None} | {"limit": limit}
    if cursor is not None:
        query["cursor"] = cursor
    answer = await _ask(resources, service, "GET", query=urlencode(query))
    if answer.status_code == 200:
        next_cursor = orjson.loads(answer.body)["pagination"]["next_cursor"]
        if next_cursor is not None:
            url = str(request.url.include_query_params(cursor=next_cursor))
            link = with_public_origin(url, resources.settings.public_base_url)
            answer.headers["Link"] = f'<{link}>; rel="next"'
    return answer


@admin_router.get(
    "/dead-letters/{dead_letter_id}",
    response_model=dl.DeadLetterDetailOut,
    responses=problems(404),
)
async def show_dead_letter(
    resources: Resources, service: Service, dead_letter_id: dl.DeadLetterId
) -> Response:
    """One dead letter with the record as consumed (value and headers) and the error."""
    return await _ask(resources, service, "GET", f"/{dead_letter_id}")


@admin_router.post("/dead-letters/replay", response_model=dl.ReplayResults, responses=problems(422))
async def replay_dead_letters(
    resources: Resources, service: Service, body: dl.ReplayMany
) -> Response:
    """Replays several dead letters in one transaction; says for each id whether it was
    replayed, or why not (`already_replayed`, `not_replayable`, `not_found`)."""
    return await _ask(resources, service, "POST", "/replay", body=body.model_dump_json().encode())


@admin_router.post(
    "/dead-letters/{dead_letter_id}/replay",
    response_model=dl.DeadLetterOut,
    responses=problems(404, 409),
)
async def replay_dead_letter(
    resources: Resources, service: Service, dead_letter_id: dl.DeadLetterId
) -> Response:
    """Once the cause is fixed: clears the consumer's dead-letter mark and puts the record
    into the service's outbox, in one transaction; the event is published to its topic
    again and applied (consumers that had applied it skip it). 409 when it was replayed
    already or cannot be (an unreadable record)."""
    return await _ask(resources, service, "POST", f"/{dead_letter_id}/replay")


@admin_router.post("/dead-letters/purge", response_model=dl.Purged, responses=problems(422))
async def purge_dead_letters(
    resources: Resources, service: Service, body: dl.PurgeRequest
) -> Response:
    """Deletes the dead letters `ids`, or every one that failed before `older_than`."""
    return await _ask(resources, service, "POST", "/purge", body=body.model_dump_json().encode())


@admin_router.delete(
    "/dead-letters/{dead_letter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404),
)
async def purge_dead_letter(
    resources: Resources, service: Service, dead_letter_id: dl.DeadLetterId
) -> Response:
    """Deletes one dead letter."""
    return await _ask(resources, service, "DELETE", f"/{dead_letter_id}")


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
