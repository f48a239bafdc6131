"""SQL of the console's sessions (`gateway.console_sessions`)."""

from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from gateway.console.sessions import Session

Executor = asyncpg.Pool | asyncpg.Connection


def _session(row: asyncpg.Record) -> Session:
    return Session(
        id_hash=row["id_hash"],
        csrf_token=row["csrf_token"],
        kind=row["kind"],
        key_id=row["key_id"],
        tenant_id=row["tenant_id"],
        scopes=frozenset(row["scopes"]),
        admin_fingerprint=row["admin_fingerprint"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
    )


async def insert_tenant_session(
    pool: Executor,
    id_hash: bytes,
    csrf_token: str,
    key_id: UUID,
    tenant_id: UUID,
    scopes: tuple[str, ...],
    lifetime: timedelta,
) -> None:
    await pool.execute(
        "INSERT INTO gateway.console_sessions"
        " (id_hash, csrf_token, kind, key_id, tenant_id, scopes, expires_at)"
        " VALUES ($1, $2, 'tenant', $3, $4, $5, now() + $6)",
        id_hash,
        csrf_token,
        key_id,
        tenant_id,
        list(scopes),
        lifetime,
    )


async def insert_admin_session(
    pool: Executor, id_hash: bytes, csrf_token: str, fingerprint: bytes, lifetime: timedelta
) -> None:
    await pool.execute(
        "INSERT INTO gateway.console_sessions"
        " (id_hash, csrf_token, kind, admin_fingerprint, expires_at)"
        " VALUES ($1, $2, 'admin', $3, now() + $4)",
        id_hash,
        csrf_token,
        fingerprint,
        lifetime,
    )


async def touch_session(pool: Executor, id_hash: bytes, idle: timedelta) -> Session | None:
    """The session, its idle clock restarted, if it is still live and its key not revoked
    (the key's current scopes with it); None otherwise."""
    row = await pool.fetchrow(
        """
        UPDATE gateway.console_sessions s SET last_seen_at = now()
        WHERE s.id_hash = $1 AND s.expires_at > now() AND s.last_seen_at + $2 > now()
          AND (s.kind = 'admin' OR EXISTS (
                SELECT 1 FROM gateway.api_keys k
                WHERE k.id = s.key_id AND k.revoked_at IS NULL))
        RETURNING s.*,
          (SELECT k.scopes FROM gateway.api_keys k WHERE k.id = s.key_id) AS key_scopes
        """,
        id_hash,
        idle,
    )
    if row is None:
        return None
    session = _session(row)
    if row["key_scopes"] is not None:
        session = Session(**{**session.__dict__, "scopes": frozenset(row["key_scopes"])})
    return session


async def delete_session(pool: Executor, id_hash: bytes) -> None:
    await pool.execute("DELETE FROM gateway.console_sessions WHERE id_hash = $1", id_hash)


async def prune_sessions(pool: Executor, idle: timedelta, now: datetime | None = None) -> int:
    status = await pool.execute(
        "DELETE FROM gateway.console_sessions"
        " WHERE expires_at <= coalesce($2, now()) OR last_seen_at + $1 <= coalesce($2, now())",
        idle,
        now,
    )
    return int(status.split()[-1])
