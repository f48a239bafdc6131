"""What the gateway does, one function per use case: tenants and their API keys (admin API
and CLI), a tenant's own keys and OAuth2 clients (self-service), access tokens for clients,
and forwarding a request once per Idempotency-Key (the public API)."""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson

from fulfilkit.errors import Duplicated, NotFound
from gateway import store
from gateway.auth import KeyCache
from gateway.domain import (
    ACCESS_TOKEN_PREFIX,
    CLIENT_SECRET_PREFIX,
    OVERVIEW_PATH,
    OVERVIEW_SERVICES,
    AccessToken,
    ApiKey,
    IdempotencyPolicy,
    IssuedClient,
    IssuedKey,
    Keep,
    OAuthClient,
    RequestFingerprint,
    StoredResponse,
    Tenant,
    TenantSummary,
    TenantWithKey,
    TokenRequest,
    UpstreamCall,
    client_id_of,
    granted_scopes,
    idempotency_key_of,
    invalid_client,
    new_api_key,
    new_secret,
    replay,
    secret_matches,
    what_to_keep,
)

Send = Callable[[UpstreamCall], Awaitable[StoredResponse]]


async def create_tenant(pool: asyncpg.Pool, name: str, scopes: Iterable[str]) -> TenantWithKey:
    """A new tenant and its first API key, with `scopes`; Duplicated when the name is taken."""
    key = new_api_key(scopes)
    async with pool.acquire() as conn, conn.transaction():
        tenant = await store.insert_tenant(conn, uuid4(), name)
        if tenant is None:
            raise Duplicated(f"A tenant named {name!r} already exists.")
        stored = await store.insert_key(conn, tenant.id, key)
    if stored is None:  # the tenant was inserted in the same transaction
        raise RuntimeError(f"the first key of tenant {tenant.id} was not stored")
    return TenantWithKey(tenant, IssuedKey(stored, key.secret))


async def find_tenant(pool: asyncpg.Pool, id_or_name: str) -> Tenant:
    """The tenant with this id, or else with this name; NotFound when there is none."""
    try:
        tenant = await store.find_tenant_by_id(pool, UUID(id_or_name))
    except ValueError:
        tenant = await store.find_tenant_by_name(pool, id_or_name)
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


async def issue_key(
    pool: store.Executor, tenant_id: UUID, scopes: Iterable[str], name: str | None = None
) -> IssuedKey:
    """Another API key for the tenant; NotFound when there is no such tenant."""
    key = new_api_key(scopes, name)
    stored = await store.insert_key(pool, tenant_id, key)
    if stored is None:
        raise NotFound("No such tenant.")
    return IssuedKey(stored, key.secret)


async def page_tenants(
    pool: asyncpg.Pool, limit: int, offset: int
) -> tuple[list[TenantSummary], int]:
    """A page of tenants, oldest first, with their key counts, and how many there are."""
    return await store.page_tenants(pool, limit, offset)


async def get_tenant(pool: asyncpg.Pool, tenant_id: UUID) -> TenantSummary:
    """The tenant with its key counts; NotFound when there is no such tenant."""
    found = await store.find_tenant_summary(pool, tenant_id)
    if found is None:
        raise NotFound("No such tenant.")
    return found


async def list_keys(pool: asyncpg.Pool, tenant_id: UUID) -> list[ApiKey]:
    """The tenant's keys, revoked ones included; NotFound when there is no such tenant."""
    if await store.find_tenant_by_id(pool, tenant_id) is None:
        raise NotFound("No such tenant.")
    return await store.list_keys(pool, tenant_id)


async def page_keys(
    pool: asyncpg.Pool, tenant_id: UUID, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    """A page of the tenant's keys, revoked ones included, and how many there are."""
    return await store.page_keys(pool, tenant_id, limit, offset)


async def revoke_key(
    pool: asyncpg.Pool,
    key_id: UUID,
    keys: KeyCache | None = None,
    tenant_id: UUID | None = None,
) -> ApiKey:
    """Revokes the key: at once in `keys` (this process's cache), and in other gateway
    processes when they hear the notification its transaction sends (`gateway.revocations`).
    NotFound when there is no such key, or when it is not `tenant_id`'s."""
    key = await store.revoke_key(pool, key_id, tenant_id)
    if key is None:
        raise NotFound("No such API key.")
    if keys is not None:
        keys.forget(key_id)
    return key


async def create_client(
    pool: store.Executor, tenant_id: UUID, name: str, scopes: Iterable[str]
) -> IssuedClient:
    """A new OAuth2 client of the tenant, with its secret; NotFound when there is no such
    tenant."""
    secret = new_secret(CLIENT_SECRET_PREFIX)
    client = await store.insert_client(
        pool, uuid4(), tenant_id, name, tuple(dict.fromkeys(scopes)), secret
    )
    if client is None:
        raise NotFound("No such tenant.")
    return IssuedClient(client, secret.secret)


async def page_clients(
    pool: asyncpg.Pool, tenant_id: UUID, limit: int, offset: int
) -> tuple[list[OAuthClient], int]:
    """A page of the tenant's clients, revoked ones included, and how many there are."""
    return await store.page_clients(pool, tenant_id, limit, offset)


async def revoke_client(
    pool: asyncpg.Pool, tenant_id: UUID, client_id: UUID, keys: KeyCache | None = None
) -> OAuthClient:
    """Revokes the client and every access token it has, as `revoke_key` does a key;
    NotFound when the tenant has no such client."""
    client = await store.revoke_client(pool, client_id, tenant_id)
    if client is None:
        raise NotFound("No such OAuth client.")
    if keys is not None:
        keys.forget(client_id)
    return client


async def authenticate_client(pool: asyncpg.Pool, request: TokenRequest) -> OAuthClient:
    """The active client whose id and secret the request carries; `invalid_client` when
    there is none or the secret does not match."""
    client_id = client_id_of(request.client_id)
    found = await store.find_active_client(pool, client_id) if client_id is not None else None
    if found is None or not secret_matches(request.client_secret, found.secret_hash):
        raise invalid_client()
    return found.client


async def issue_access_token(
    pool: asyncpg.Pool, client: OAuthClient, scope: str | None, lifetime_seconds: int
) -> AccessToken:
    """An access token for the client, with the scopes asked for in `scope` (all of the
    client's by default); OAuthError `invalid_scope` for one it lacks, `invalid_client` when
    it was revoked meanwhile."""
    scopes = granted_scopes(scope, client.scopes)
    token = new_secret(ACCESS_TOKEN_PREFIX)
    if not await store.insert_access_token(pool, client.id, token.hash, scopes, lifetime_seconds):
        raise invalid_client()
    return AccessToken(token.secret, scopes, lifetime_seconds)


async def prune_access_tokens(pool: asyncpg.Pool) -> int:
    """Forgets expired access tokens; returns how many."""
    return await store.prune_access_tokens(pool)


async def forward_once(
    pool: asyncpg.Pool, policy: IdempotencyPolicy, call: UpstreamCall, send: Send
) -> StoredResponse:
    """Sends `call` to its service, a POST with an Idempotency-Key once per (tenant, key) as
    far as the gateway knows: a retry gets the first answer, Conflict when it is another
    request or the first is still in progress.

    The key travels with the request and the service keys its effect with it, so whenever
    the gateway cannot tell (its record lost the answer, the service died, this gateway
    died) the retry is forwarded again and the service replays.
    """
    key = idempotency_key_of(call)
    if key is None:
        return await send(call)
    fingerprint = RequestFingerprint.of(call.method, call.path, call.query, call.body)
    record = await store.claim_idempotency_key(
        pool, call.tenant_id, key, fingerprint, policy.ttl, policy.forward_again_after
    )
    if record is not None:
        return replay(record, fingerprint)
    try:
        response = await send(call)
    except BaseException:
        # shield: a cancelled request (client gone) must still free the key for its retry
        await asyncio.shield(store.release_idempotency_key(pool, call.tenant_id, key))
        raise
    match what_to_keep(response):
        case Keep.NOTHING:
            await store.release_idempotency_key(pool, call.tenant_id, key)
        case Keep.NOT_THE_ANSWER:
            await store.save_idempotent_response(pool, call.tenant_id, key, None)
        case Keep.ANSWER:
            await store.save_idempotent_response(pool, call.tenant_id, key, response)
    return response


async def prune_idempotency_records(pool: asyncpg.Pool, ttl: timedelta) -> int:
    """Forgets the records of requests older than `ttl`; returns how many."""
    return await store.prune_idempotency_keys(pool, ttl)


# --- the operator's overview ---------------------------------------------------------------


async def overview(send: Send, timeout: float) -> list[dict[str, Any]]:
    """Every service's overview, asked at once; one that does not answer in `timeout`
    seconds (or not usably) is `unreachable`, never waited for longer."""
    answers = await asyncio.gather(
        *(_service_overview(send, service, timeout) for service in OVERVIEW_SERVICES)
    )
    return list(answers)


async def _service_overview(send: Send, service: str, timeout: float) -> dict[str, Any]:
    call = UpstreamCall(service, "GET", OVERVIEW_PATH, "", {}, b"", None, "admin")
    try:
        answer = await asyncio.wait_for(send(call), timeout)
        if answer.status_code != 200:
            return _unreachable(service, f"it answered {answer.status_code}")
        found = orjson.loads(answer.body)
    except TimeoutError:
        return _unreachable(service, f"no answer within {timeout:g} s")
    except ValueError:
        return _unreachable(service, "its answer was not JSON")
    except Exception as exc:  # the forwarder's 503 problem, or anything else: not a 500 here
        return _unreachable(service, getattr(exc, "detail", None) or type(exc).__name__)
    return {
        "service": service,
        "status": "ready" if found.get("ready") else "not_ready",
        "checks": found.get("checks"),
        "consumer_lag": found.get("consumer_lag"),
        "outbox_backlog_rows": found.get("outbox_backlog_rows"),
        "dead_letters": found.get("dead_letters"),
    }


def _unreachable(service: str, why: str) -> dict[str, Any]:
    return {
        "service": service,
        "status": "unreachable",
        "checks": None,
        "consumer_lag": None,
        "outbox_backlog_rows": None,
        "dead_letters": None,
        "error": why,
    }
