"""HTTP routes: the admin API, a tenant's own API keys and OAuth2 clients, the token
endpoint, and the docs (the rest of /api/v1 is forwarded by `gateway.forwarding`)."""

import functools
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from fulfilkit import deadletters as dead_letter_store
from fulfilkit import idempotency
from fulfilkit.http import deadletters as dl
from fulfilkit.http.openapi import PROBLEM_JSON, PROBLEM_REF, problems
from fulfilkit.http.pagination import Page, paginated
from fulfilkit.http.problems import Problem
from fulfilkit.http.strict_json import StrictJsonRoute
from fulfilkit.idempotency import Answer
from fulfilkit.service import Pool
from gateway import usecases
from gateway.checks import ClientGone, invalid_token, read_body
from gateway.domain import (
    ADMIN_PREFIX,
    API_KEYS_PATH,
    API_PREFIX,
    CLIENTS_PATH,
    SCOPES,
    STOCK_OPERATOR_PREFIX,
    Caller,
    DeadLetterService,
    OAuthError,
    UpstreamCall,
    client_address,
    is_admin,
    parse_token_request,
    retry_after,
    with_public_origin,
)
from gateway.openapi import TITLE, VERSION
from gateway.resources import Resources
from gateway.schemas import (
    ClientOut,
    ClientPage,
    CreatedClient,
    CreatedKey,
    CreatedTenant,
    IdempotencyKey,
    IntegrityReportOut,
    KeyList,
    KeyOut,
    KeyPage,
    NewClient,
    NewKey,
    NewNamedKey,
    NewTenant,
    OAuthErrorOut,
    OverviewOut,
    TenantDetail,
    TenantPage,
    TokenOut,
)

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


@admin_router.get("/tenants")
async def list_tenants(
    pool: Pool, page: Page, request: Request, response: Response, resources: Resources
) -> TenantPage:
    """Every tenant, oldest first, with how many of its keys are active and revoked."""
    found, total = await usecases.page_tenants(pool, page.limit, page.offset)
    answer = paginated(request, response, page, [TenantDetail.of(t) for t in found], total)
    _public_links(response, resources)
    return TenantPage.model_validate(answer)


@admin_router.get("/tenants/{tenant_id}", responses=problems(404))
async def get_tenant(tenant_id: UUID, pool: Pool) -> TenantDetail:
    """One tenant with how many of its keys are active and revoked."""
    return TenantDetail.of(await usecases.get_tenant(pool, tenant_id))


@admin_router.post("/tenants/{tenant_id}/keys", status_code=status.HTTP_201_CREATED)
async def create_key(tenant_id: UUID, body: NewKey, pool: Pool) -> CreatedKey:
    return CreatedKey.issued(await usecases.issue_key(pool, tenant_id, body.scopes, body.name))


@admin_router.get("/tenants/{tenant_id}/keys")
async def list_keys(tenant_id: UUID, pool: Pool) -> KeyList:
    """The tenant's keys, revoked ones included; secrets are never shown again."""
    return KeyList(data=[KeyOut.of(k) for k in await usecases.list_keys(pool, tenant_id)])


@admin_router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: UUID, pool: Pool, resources: Resources) -> Response:
    """Revokes a key on every gateway process: from its next request on."""
    await usecases.revoke_key(pool, key_id, resources.keys)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- a tenant's own API keys and OAuth2 clients (guarded by gateway.self_service_guard) ------

NO_STORE = "no-store"
SCHEMA = "gateway"  # where `idempotency.once` keeps the self-service creates' keys
TENANT_ADMIN_SECURITY = {"security": [{"apiKey": []}, {"oauth2": ["admin"]}]}


async def _tenant_admin(request: Request) -> Caller:
    """The caller the guard checked: an API key or access token with the `admin` scope."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):  # the guard did not run: refuse rather than guess
        raise invalid_token("Send an API key as `Authorization: Bearer <key>`.", missing=True)
    return caller


TenantAdmin = Annotated[Caller, Depends(_tenant_admin)]

self_service_router = APIRouter(
    prefix=API_PREFIX,
    tags=["credentials"],
    route_class=StrictJsonRoute,
    responses=problems(403),
)


def _public_links(response: Response, resources: Resources) -> None:
    if link := response.headers.get("Link"):
        response.headers["Link"] = with_public_origin(link, resources.settings.public_base_url)


@self_service_router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedKey,
    responses=problems(409),
    openapi_extra=TENANT_ADMIN_SECURITY,
)
async def create_api_key(
    body: NewNamedKey,
    caller: TenantAdmin,
    pool: Pool,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A new API key of the caller's tenant, with a name and scopes. The secret `api_key` is
    in this answer only (`Cache-Control: no-store`); needs the `admin` scope. A retry with
    the same `Idempotency-Key` creates nothing: 409 naming the key made the first time."""

    async def create(conn: asyncpg.Connection) -> Answer:
        issued = await usecases.issue_key(conn, caller.tenant_id, body.scopes, body.name)
        headers = {"Cache-Control": NO_STORE, "Location": f"{API_KEYS_PATH}/{issued.key.id}"}
        kept = Answer.json(KeyOut.of(issued.key), status.HTTP_201_CREATED, headers=headers)
        answer = Answer.json(CreatedKey.issued(issued), status.HTTP_201_CREATED, headers=headers)
        return replace(answer, kept=kept)

    return await idempotency.once(
        pool, SCHEMA, caller.tenant_id, request, create, _secret_shown_once("API key")
    )


def _secret_shown_once(
    what: str,
) -> Callable[[asyncpg.Connection, Answer], Awaitable[Answer]]:
    """A replay of a create: the secret was shown once and only its hash is kept, so the
    first answer cannot be made again; 409 naming what the first request created."""

    async def refuse(_conn: asyncpg.Connection, kept: Answer) -> Answer:
        created = orjson.loads(kept.body)
        name = created.get("id") or created.get("client_id")
        raise Problem(
            "conflict",
            f"This Idempotency-Key already created {what} {name}; its secret was shown only"
            " in that answer. If it was lost, revoke that one and create another.",
        )

    return refuse


@self_service_router.get("/api-keys", openapi_extra=TENANT_ADMIN_SECURITY)
async def list_api_keys(
    caller: TenantAdmin,
    pool: Pool,
    page: Page,
    request: Request,
    response: Response,
    resources: Resources,
) -> KeyPage:
    """The tenant's API keys, oldest first, revoked ones included; never their secrets."""
    keys, total = await usecases.page_keys(pool, caller.tenant_id, page.limit, page.offset)
    answer = paginated(request, response, page, [KeyOut.of(k) for k in keys], total)
    _public_links(response, resources)
    return KeyPage.model_validate(answer)


@self_service_router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=TENANT_ADMIN_SECURITY,
)
async def revoke_api_key(
    key_id: UUID, caller: TenantAdmin, pool: Pool, resources: Resources
) -> Response:
    """Revokes one of the tenant's keys (the one calling too, if asked): every gateway
    refuses it from its next request on. 404 for another tenant's key."""
    await usecases.revoke_key(pool, key_id, resources.keys, tenant_id=caller.tenant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@self_service_router.post(
    "/oauth/clients",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedClient,
    responses=problems(409),
    openapi_extra=TENANT_ADMIN_SECURITY,
)
async def create_oauth_client(
    body: NewClient,
    caller: TenantAdmin,
    pool: Pool,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A new OAuth2 client of the caller's tenant for the client credentials grant
    (`POST /api/v1/oauth/token`), with a name and the scopes its tokens may have. The
    `client_secret` is in this answer only (`Cache-Control: no-store`); needs `admin`. A
    retry with the same `Idempotency-Key` creates nothing: 409 naming the first client."""

    async def create(conn: asyncpg.Connection) -> Answer:
        issued = await usecases.create_client(conn, caller.tenant_id, body.name, body.scopes)
        location = f"{CLIENTS_PATH}/{issued.client.id}"
        headers = {"Cache-Control": NO_STORE, "Location": location}
        kept = Answer.json(ClientOut.of(issued.client), status.HTTP_201_CREATED, headers=headers)
        answer = Answer.json(CreatedClient.issued(issued), status.HTTP_201_CREATED, headers=headers)
        return replace(answer, kept=kept)

    return await idempotency.once(
        pool, SCHEMA, caller.tenant_id, request, create, _secret_shown_once("OAuth client")
    )


@self_service_router.get("/oauth/clients", openapi_extra=TENANT_ADMIN_SECURITY)
async def list_oauth_clients(
    caller: TenantAdmin,
    pool: Pool,
    page: Page,
    request: Request,
    response: Response,
    resources: Resources,
) -> ClientPage:
    """The tenant's OAuth2 clients, oldest first, revoked ones included; never secrets."""
    clients, total = await usecases.page_clients(pool, caller.tenant_id, page.limit, page.offset)
    answer = paginated(request, response, page, [ClientOut.of(c) for c in clients], total)
    _public_links(response, resources)
    return ClientPage.model_validate(answer)


@self_service_router.delete(
    "/oauth/clients/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=TENANT_ADMIN_SECURITY,
)
async def revoke_oauth_client(
    client_id: UUID, caller: TenantAdmin, pool: Pool, resources: Resources
) -> Response:
    """Revokes one of the tenant's clients and every access token it has: every gateway
    refuses them from their next request on, and the client gets no new token. 404 for
    another tenant's client."""
    await usecases.revoke_client(pool, caller.tenant_id, client_id, resources.keys)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- the OAuth2 token endpoint (RFC 6749 section 4.4): its errors follow RFC 6749 5.2 -------

oauth_router = APIRouter(prefix=API_PREFIX + "/oauth", tags=["oauth"])

TOKEN_FORM = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "scope": {
            "type": "string",
            "description": "Space-delimited scopes, some of the client's; all of them when"
            f" left out. Scopes: {', '.join(SCOPES)}.",
        },
        "client_id": {"type": "string", "description": "Unless sent by HTTP Basic."},
        "client_secret": {"type": "string", "description": "Unless sent by HTTP Basic."},
    },
}
OAUTH_ERROR = {"model": OAuthErrorOut}
NO_STORE_HEADERS = {"Cache-Control": NO_STORE, "Pragma": "no-cache"}


def _oauth_error(error: OAuthError, headers: dict[str, str] | None = None) -> JSONResponse:
    all_headers = {**NO_STORE_HEADERS, **(headers or {})}
    if error.status == status.HTTP_401_UNAUTHORIZED:
        all_headers["WWW-Authenticate"] = 'Basic realm="fulfil"'
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers=all_headers,
    )


@oauth_router.post(
    "/token",
    response_model=TokenOut,
    responses={
        400: {"description": "`invalid_request`, `invalid_scope`, `unsupported_grant_type`."}
        | OAUTH_ERROR,
        401: {"description": "`invalid_client`: unknown client, wrong secret, revoked."}
        | OAUTH_ERROR,
        429: {"description": "`too_many_requests`: see `Retry-After`."} | OAUTH_ERROR,
        503: {
            "description": "The database is unavailable; see `Retry-After`.",
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": TOKEN_FORM}},
        },
        "security": [{"clientBasic": []}, {}],
    },
)
async def issue_token(request: Request, pool: Pool, resources: Resources) -> Response:
    """OAuth2 client credentials grant: the client authenticates by HTTP Basic
    (`client_id:client_secret`, each form-urlencoded) or by `client_id` and `client_secret`
    form fields, never both, and gets a bearer access token that works as an API key with
    the client's scopes (or those of them asked for in `scope`) for `expires_in` seconds.
    Errors are RFC 6749 JSON (`error`, `error_description`), not problem documents."""
    settings = resources.settings
    address = client_address(request.scope)
    try:
        try:
            body = await read_body(request.receive, request.headers, settings.admin_max_body_bytes)
        except Problem as problem:
            raise OAuthError("invalid_request", problem.detail) from None
        token_request = parse_token_request(
            request.headers.get("content-type"), body, request.headers.get("authorization")
        )
        # Failed attempts are limited per address, before any database work.
        wait = resources.unauthenticated.wait_seconds(address)
        if wait > 0:
            return _oauth_error(
                OAuthError("too_many_requests", "Too many failed attempts from this address.", 429),
                {"Retry-After": retry_after(wait)},
            )
        client = await usecases.authenticate_client(pool, token_request)
        resources.unauthenticated.give_back(address)
        # a client's tokens and its requests share one bucket: minting tokens buys no rate
        wait = resources.limiter.wait_seconds(client.id)
        if wait > 0:
            return _oauth_error(
                OAuthError("too_many_requests", "Too many requests for this client.", 429),
                {"Retry-After": retry_after(wait)},
            )
        token = await usecases.issue_access_token(
            pool, client, token_request.scope, settings.oauth_token_seconds
        )
    except ClientGone:
        return Response(status_code=status.HTTP_400_BAD_REQUEST)
    except OAuthError as error:
        return _oauth_error(error)
    return JSONResponse(TokenOut.of(token).model_dump(), headers=NO_STORE_HEADERS)


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


# --- the operator's overview and the stock integrity check ---------------------------------


@admin_router.get("/overview")
async def overview(resources: Resources) -> OverviewOut:
    """Each service at a glance: readiness, consumer lag per group and topic (summed over
    partitions), outbox backlog rows and dead letters by state, asked of every service at
    once. A service that does not answer within `OVERVIEW_TIMEOUT_SECONDS` (or answers
    nothing usable) shows `unreachable`; the answer never waits longer for it."""
    return OverviewOut.model_validate(
        {
            "services": await usecases.overview(
                resources.forwarder.forward, resources.settings.overview_timeout_seconds
            )
        }
    )


IntegrityTenant = Annotated[
    UUID | None, Query(description="One tenant's stock records; every tenant's when left out.")
]


@admin_router.get(
    "/stock/integrity", response_model=IntegrityReportOut, responses=problems(422, 503)
)
async def check_stock_integrity(
    resources: Resources, tenant_id: IntegrityTenant = None
) -> Response:
    """Does every stock record's `reserved` equal its active reservations, and its ledger
    sum? Over every tenant's records, or `tenant_id`'s. `ok` is false while any disagree."""
    return await _ask_stock(resources, "GET", "/integrity", tenant_id)


@admin_router.post(
    "/stock/integrity/rebuild", response_model=IntegrityReportOut, responses=problems(422, 503)
)
async def rebuild_stock_integrity(
    resources: Resources, tenant_id: IntegrityTenant = None
) -> Response:
    """Sets `reserved` to the sum of active reservations where they differ (with a ledger
    adjustment), then checks again; `repaired` says how many records it set right."""
    return await _ask_stock(resources, "POST", "/integrity/rebuild", tenant_id)


async def _ask_stock(
    resources: Resources, method: str, path: str, tenant_id: UUID | None
) -> Response:
    answer = await resources.forwarder.forward(
        UpstreamCall(
            service="stock",
            method=method,
            path=STOCK_OPERATOR_PREFIX + path,
            query=urlencode({"tenant_id": str(tenant_id)}) if tenant_id else "",
            headers={},
            body=b"",
            tenant_id=None,
            actor="admin",
        )
    )
    return Response(
        answer.body, status_code=answer.status_code, media_type=answer.headers.get("content-type")
    )


# --- documentation -------------------------------------------------------------------------

docs_router = APIRouter(include_in_schema=False)


@functools.cache
def _admin_document() -> dict[str, Any]:
    """The gateway's own routes: the admin API, the token endpoint, keys and clients."""
    routes = [*admin_router.routes, *oauth_router.routes, *self_service_router.routes]
    return get_openapi(title=TITLE, version=VERSION, routes=routes)


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
