"""SQL for the gateway's schema: tenants, API keys, OAuth2 clients and their access tokens,
and idempotency records."""

from datetime import timedelta
from uuid import UUID

import asyncpg

from gateway.domain import (
    ApiKey,
    Caller,
    ClientCredentials,
    IdempotencyRecord,
    NewApiKey,
    NewSecret,
    OAuthClient,
    RequestFingerprint,
    StoredResponse,
    Tenant,
    TenantSummary,
)

Executor = asyncpg.Pool | asyncpg.Connection

# Every gateway process LISTENs here and forgets the credential named in the payload (the id
# of an API key or of an OAuth2 client): sent by the revoking transaction, on its commit.
REVOCATIONS_CHANNEL = "gateway_revocations"


def _tenant(row: asyncpg.Record) -> Tenant:
    return Tenant(id=row["id"], name=row["name"], created_at=row["created_at"])


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        prefix=row["prefix"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        name=row["name"],
    )


def _client(row: asyncpg.Record) -> OAuthClient:
    return OAuthClient(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        secret_prefix=row["secret_prefix"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def insert_tenant(conn: Executor, tenant_id: UUID, name: str) -> Tenant | None:
    """The new tenant; None when the name is taken."""
    row = await conn.fetchrow(
        "INSERT INTO gateway.tenants (id, name) VALUES ($1, $2)"
        " ON CONFLICT (name) DO NOTHING RETURNING *",
        tenant_id,
        name,
    )
    return _tenant(row) if row else None


async def find_tenant_by_id(pool: Executor, tenant_id: UUID) -> Tenant | None:
    row = await pool.fetchrow("SELECT * FROM gateway.tenants WHERE id = $1", tenant_id)
    return _tenant(row) if row else None


_TENANT_SUMMARY = (
    "SELECT t.id, t.name, t.created_at,"
    " (SELECT count(*) FROM gateway.api_keys k"
    "  WHERE k.tenant_id = t.id AND k.revoked_at IS NULL) AS active_keys,"
    " (SELECT count(*) FROM gateway.api_keys k"
    "  WHERE k.tenant_id = t.id AND k.revoked_at IS NOT NULL) AS revoked_keys"
    " FROM gateway.tenants t"
)


def _summary(row: asyncpg.Record) -> TenantSummary:
    return TenantSummary(_tenant(row), row["active_keys"], row["revoked_keys"])


async def page_tenants(pool: Executor, limit: int, offset: int) -> tuple[list[TenantSummary], int]:
    """A page of tenants, oldest first, with their key counts, and how many there are."""
    rows = await pool.fetch(
        f"{_TENANT_SUMMARY} ORDER BY t.created_at, t.id LIMIT $1 OFFSET $2", limit, offset
    )
    total = await pool.fetchval("SELECT count(*) FROM gateway.tenants")
    return [_summary(r) for r in rows], total


async def find_tenant_summary(pool: Executor, tenant_id: UUID) -> TenantSummary | None:
    row = await pool.fetchrow(f"{_TENANT_SUMMARY} WHERE t.id = $1", tenant_id)
    return _summary(row) if row else None


async def find_tenant_by_name(pool: Executor, name: str) -> Tenant | None:
    row = await pool.fetchrow("SELECT * FROM gateway.tenants WHERE name = $1", name)
    return _tenant(row) if row else None


async def insert_key(conn: Executor, tenant_id: UUID, key: NewApiKey) -> ApiKey | None:
    """The stored key; None when there is no such tenant."""
    row = await conn.fetchrow(
        "INSERT INTO gateway.api_keys (id, tenant_id, key_hash, prefix, scopes, name)"
        " SELECT $1, id, $3, $4, $5, $6 FROM gateway.tenants WHERE id = $2 RETURNING *",
        key.id,
        tenant_id,
        key.key_hash,
        key.prefix,
        list(key.scopes),
        key.name,
    )
    return _api_key(row) if row else None


async def find_active_key(pool: Executor, key_hash: bytes) -> ApiKey | None:
    row = await pool.fetchrow(
        "SELECT * FROM gateway.api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_hash
    )
    return _api_key(row) if row else None


async def list_keys(pool: Executor, tenant_id: UUID) -> list[ApiKey]:
    rows = await pool.fetch(
        "SELECT * FROM gateway.api_keys WHERE tenant_id = $1 ORDER BY created_at, id", tenant_id
    )
    return [_api_key(r) for r in rows]


async def page_keys(
    pool: Executor, tenant_id: UUID, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    """A page of the tenant's keys, oldest first, and how many there are."""
    rows = await pool.fetch(
        "SELECT * FROM gateway.api_keys WHERE tenant_id = $1"
        " ORDER BY created_at, id LIMIT $2 OFFSET $3",
        tenant_id,
        limit,
        offset,
    )
    total = await pool.fetchval(
        "SELECT count(*) FROM gateway.api_keys WHERE tenant_id = $1", tenant_id
    )
    return [_api_key(r) for r in rows], total


async def revoke_key(pool: Executor, key_id: UUID, tenant_id: UUID | None = None) -> ApiKey | None:
    """Revokes the key (keeping the first revocation time) and tells every gateway process
    on commit; None when there is no such key (of `tenant_id`, when given)."""
    row = await pool.fetchrow(
        "WITH revoked AS ("
        " UPDATE gateway.api_keys SET revoked_at = coalesce(revoked_at, now())"
        " WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) RETURNING *)"
        " SELECT revoked.*, pg_notify($3, revoked.id::text) FROM revoked",
        key_id,
        tenant_id,
        REVOCATIONS_CHANNEL,
    )
    return _api_key(row) if row else None


# --- OAuth2 clients and access tokens ----------------------------------------------------


async def insert_client(
    pool: Executor,
    client_id: UUID,
    tenant_id: UUID,
    name: str,
    scopes: tuple[str, ...],
    secret: NewSecret,
) -> OAuthClient | None:
    """The stored client; None when there is no such tenant."""
    row = await pool.fetchrow(
        "INSERT INTO gateway.oauth_clients"
        " (id, tenant_id, name, secret_hash, secret_prefix, scopes)"
        " SELECT $1, id, $3, $4, $5, $6 FROM gateway.tenants WHERE id = $2 RETURNING *",
        client_id,
        tenant_id,
        name,
        secret.hash,
        secret.prefix,
        list(scopes),
    )
    return _client(row) if row else None


async def page_clients(
    pool: Executor, tenant_id: UUID, limit: int, offset: int
) -> tuple[list[OAuthClient], int]:
    """A page of the tenant's clients, oldest first, and how many there are."""
    rows = await pool.fetch(
        "SELECT * FROM gateway.oauth_clients WHERE tenant_id = $1"
        " ORDER BY created_at, id LIMIT $2 OFFSET $3",
        tenant_id,
        limit,
        offset,
    )
    total = await pool.fetchval(
        "SELECT count(*) FROM gateway.oauth_clients WHERE tenant_id = $1", tenant_id
    )
    return [_client(r) for r in rows], total


async def find_active_client(pool: Executor, client_id: UUID) -> ClientCredentials | None:
    row = await pool.fetchrow(
        "SELECT * FROM gateway.oauth_clients WHERE id = $1 AND revoked_at IS NULL", client_id
    )
    return ClientCredentials(_client(row), bytes(row["secret_hash"])) if row else None


async def revoke_client(pool: Executor, client_id: UUID, tenant_id: UUID) -> OAuthClient | None:
    """Revokes the client, deletes its access tokens and tells every gateway process on
    commit; None when the tenant has no such client."""
    row = await pool.fetchrow(
        "WITH revoked AS ("
        " UPDATE gateway.oauth_clients SET revoked_at = coalesce(revoked_at, now())"
        " WHERE id = $1 AND tenant_id = $2 RETURNING *),"
        " gone AS (DELETE FROM gateway.access_tokens t USING revoked"
        " WHERE t.client_id = revoked.id)"
        " SELECT revoked.*, pg_notify($3, revoked.id::text) FROM revoked",
        client_id,
        tenant_id,
        REVOCATIONS_CHANNEL,
    )
    return _client(row) if row else None


async def insert_access_token(
    pool: Executor, client_id: UUID, token_hash: bytes, scopes: tuple[str, ...], seconds: int
) -> bool:
    """Stores a token valid for `seconds`; False when the client is revoked meanwhile."""
    inserted = await pool.fetchval(
        "INSERT INTO gateway.access_tokens (token_hash, client_id, scopes, expires_at)"
        " SELECT $2, id, $3, now() + make_interval(secs => $4) FROM gateway.oauth_clients"
        " WHERE id = $1 AND revoked_at IS NULL RETURNING true",
        client_id,
        token_hash,
        list(scopes),
        seconds,
    )
    return bool(inserted)


async def find_active_access_token(
    pool: Executor, token_hash: bytes
) -> tuple[Caller, float] | None:
    """The caller of an unexpired token of an active client, and the seconds it has left
    (by the database's clock, which issued it)."""
    row = await pool.fetchrow(
        "SELECT c.id, c.tenant_id, t.scopes,"
        " extract(epoch FROM t.expires_at - now())::float8 AS remaining"
        " FROM gateway.access_tokens t JOIN gateway.oauth_clients c ON c.id = t.client_id"
        " WHERE t.token_hash = $1 AND t.expires_at > now() AND c.revoked_at IS NULL",
        token_hash,
    )
    if row is None:
        return None
    caller = Caller(row["id"], row["tenant_id"], frozenset(row["scopes"]), kind="client")
    return caller, row["remaining"]


async def prune_access_tokens(pool: Executor, batch: int = 5000) -> int:
    """Deletes expired access tokens in batches (short transactions); returns how many."""
    total = 0
    while True:
        status = await pool.execute(
            "DELETE FROM gateway.access_tokens WHERE token_hash = ANY(ARRAY("
            " SELECT token_hash FROM gateway.access_tokens WHERE expires_at < now() LIMIT $1))",
            batch,
        )
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total


async def claim_idempotency_key(
    pool: asyncpg.Pool,
    tenant_id: UUID,
    key: str,
    fingerprint: RequestFingerprint,
    ttl: timedelta,
    forward_again_after: timedelta,
) -> IdempotencyRecord | None:
    """Records the request as in progress and returns None (forward it), or returns the
    record already there (replay it, or refuse it).

    The same request is forwarded again when its record has no answer to replay: the first
    attempt is in progress for longer than `forward_again_after` (its gateway may have died
    before saving the answer), or its answer was not to be stored. The service keys the
    effect itself, so forwarding again never applies it twice. An expired record is taken
    over as if it were absent.
    """
    for _ in range(3):
        claimed = await pool.fetchval(
            """
            INSERT INTO gateway.idempotency_keys AS k (tenant_id, key, method, path, body_sha256)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant_id, key) DO UPDATE
               SET method = EXCLUDED.method, path = EXCLUDED.path,
                   body_sha256 = EXCLUDED.body_sha256, status_code = NULL, headers = NULL,
                   body = NULL, created_at = now(), completed_at = NULL
             WHERE k.created_at < now() - $6::interval
                OR (k.status_code IS NULL
                    AND (k.completed_at IS NOT NULL OR k.created_at < now() - $7::interval)
                    AND (k.method, k.path, k.body_sha256) = ($3, $4, $5))
            RETURNING true
            """,
            tenant_id,
            key,
            fingerprint.method,
            fingerprint.path,
            fingerprint.body_sha256,
            ttl,
            forward_again_after,
        )
        if claimed:
            return None
        # A separate statement: it must see a row committed after the INSERT's snapshot.
        row = await pool.fetchrow(
            "SELECT * FROM gateway.idempotency_keys WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            key,
        )
        if row is not None:
            return _idempotency_record(row)
    raise RuntimeError(f"idempotency key {key!r} kept changing hands")


def _idempotency_record(row: asyncpg.Record) -> IdempotencyRecord:
    fingerprint = RequestFingerprint(row["method"], row["path"], bytes(row["body_sha256"]))
    if row["status_code"] is None:
        return IdempotencyRecord(fingerprint, None)
    response = StoredResponse(row["status_code"], dict(row["headers"]), bytes(row["body"]))
    return IdempotencyRecord(fingerprint, response)


async def save_idempotent_response(
    pool: asyncpg.Pool, tenant_id: UUID, key: str, response: StoredResponse | None
) -> None:
    """Completes the record with the answer to replay, or with None: a retry is forwarded
    again (the answer must not be stored here, and the service replays it)."""
    if response is None:
        await pool.execute(
            "UPDATE gateway.idempotency_keys SET completed_at = now()"
            " WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            key,
        )
        return
    await pool.execute(
        "UPDATE gateway.idempotency_keys"
        " SET status_code = $3, headers = $4, body = $5, completed_at = now()"
        " WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
        response.status_code,
        response.headers,
        response.body,
    )


async def release_idempotency_key(pool: asyncpg.Pool, tenant_id: UUID, key: str) -> None:
    await pool.execute(
        "DELETE FROM gateway.idempotency_keys"
        " WHERE tenant_id = $1 AND key = $2 AND status_code IS NULL AND completed_at IS NULL",
        tenant_id,
        key,
    )


async def prune_idempotency_keys(pool: asyncpg.Pool, ttl: timedelta, batch: int = 5000) -> int:
    """Deletes expired records in batches (short transactions); returns how many."""
    total = 0
    while True:
        status = await pool.execute(
            "DELETE FROM gateway.idempotency_keys WHERE ctid = ANY(ARRAY("
            " SELECT ctid FROM gateway.idempotency_keys"
            " WHERE created_at < now() - $1::interval LIMIT $2))",
            ttl,
            batch,
        )
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total
