"""Endpoints: their settings, their sealed secrets, and pausing or resuming their queues."""

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from webhooks.domain import Endpoint, NewEndpoint
from webhooks.store import Executor, notify_dispatcher

MANUAL_DISABLE_REASON = "disabled through the API"
ENDPOINT_COLUMNS = (
    "id, url, description, event_types, headers, enabled, ordered, disabled_reason, version,"
    " created_at, updated_at, previous_secret_expires_at, secret_generation, filters"
)


def endpoint_of(row: Any) -> Endpoint:
    return Endpoint(**{**row, "headers": dict(row["headers"]), "filters": dict(row["filters"])})


async def create_endpoint(
    db: Executor, tenant_id: UUID, endpoint_id: UUID, new: NewEndpoint, secret: str
) -> Endpoint:
    row = await db.fetchrow(
        "INSERT INTO webhooks.endpoints"
        " (id, tenant_id, url, description, event_types, headers, enabled, disabled_reason,"
        "  secret, ordered, filters)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN NULL ELSE $8 END, $9, $10, $11)"
        f" RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id,
        tenant_id,
        new.url,
        new.description,
        new.event_types,
        new.headers,
        new.enabled,
        MANUAL_DISABLE_REASON,
        secret,
        new.ordered,
        new.filters,
    )
    return endpoint_of(row)


async def lock_tenant_endpoints(conn: asyncpg.Connection, tenant_id: UUID) -> int:
    """How many endpoints the tenant has, with creations of that tenant serialised until the
    caller's transaction ends (so a cap on the count holds under concurrent creates)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock("
        "hashtextextended('webhooks.endpoints:' || $1::uuid::text, 0))",
        tenant_id,
    )
    return await conn.fetchval(
        "SELECT count(*) FROM webhooks.endpoints WHERE tenant_id = $1", tenant_id
    )


async def list_endpoints(
    db: Executor, tenant_id: UUID, limit: int, offset: int
) -> tuple[list[Endpoint], int]:
    rows = await db.fetch(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhooks.endpoints WHERE tenant_id = $1"
        " ORDER BY created_at, id LIMIT $2 OFFSET $3",
        tenant_id,
        limit,
        offset,
    )
    total = await db.fetchval(
        "SELECT count(*) FROM webhooks.endpoints WHERE tenant_id = $1", tenant_id
    )
    return [endpoint_of(r) for r in rows], total


async def get_endpoint(db: Executor, tenant_id: UUID, endpoint_id: UUID) -> Endpoint | None:
    """With its sealed secrets."""
    row = await db.fetchrow(
        f"SELECT {ENDPOINT_COLUMNS}, secret, previous_secret FROM webhooks.endpoints"
        " WHERE id = $1 AND tenant_id = $2",
        endpoint_id,
        tenant_id,
    )
    return None if row is None else endpoint_of(row)


async def lock_endpoint(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID
) -> tuple[bool, int] | None:
    """(enabled, version) of the endpoint, locked until the caller's transaction ends."""
    row = await conn.fetchrow(
        "SELECT enabled, version FROM webhooks.endpoints WHERE id = $1 AND tenant_id = $2"
        " FOR UPDATE",
        endpoint_id,
        tenant_id,
    )
    return None if row is None else (row["enabled"], row["version"])


async def update_endpoint(
    conn: asyncpg.Connection, endpoint_id: UUID, fields: Mapping[str, Any], toggled: bool
) -> Endpoint:
    """Write `fields` (names of `PATCHABLE`); `toggled`: `enabled` changes, so the disabled
    reason and the failing streak are reset with it."""
    args: list[Any] = [endpoint_id]
    sets = []
    for name, value in fields.items():
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    if toggled:
        args.append(None if fields["enabled"] else MANUAL_DISABLE_REASON)
        sets.append(f"disabled_reason = ${len(args)}::text")
        sets.append("failing_since = NULL")
    row = await conn.fetchrow(
        f"UPDATE webhooks.endpoints SET {', '.join(sets)}, version = version + 1,"
        f" updated_at = now() WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}",
        *args,
    )
    return endpoint_of(row)


async def delete_endpoint(db: Executor, tenant_id: UUID, endpoint_id: UUID) -> bool:
    deleted = await db.fetchval(
        "DELETE FROM webhooks.endpoints WHERE id = $1 AND tenant_id = $2 RETURNING id",
        endpoint_id,
        tenant_id,
    )
    return deleted is not None


async def rotate_secret(
    db: Executor, tenant_id: UUID, endpoint_id: UUID, secret: str, overlap: timedelta
) -> Endpoint | None:
    row = await db.fetchrow(
        "UPDATE webhooks.endpoints SET previous_secret = secret, secret = $3,"
        " previous_secret_expires_at = now() + $4::interval, version = version + 1,"
        " secret_generation = secret_generation + 1,"
        " updated_at = now() WHERE id = $1 AND tenant_id = $2"
        f" RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id,
        tenant_id,
        secret,
        overlap,
    )
    return None if row is None else endpoint_of(row)


async def disable_endpoints(
    conn: asyncpg.Connection, reasons: Mapping[UUID, str]
) -> list[tuple[UUID, Endpoint]]:
    """Disable the enabled ones among `reasons`; (tenant, endpoint) of each one disabled."""
    if not reasons:
        return []
    rows = await conn.fetch(
        "UPDATE webhooks.endpoints e SET enabled = false, disabled_reason = r.reason,"
        " version = e.version + 1, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[]) AS r(id, reason)"
        " WHERE e.id = r.id AND e.enabled"
        f" RETURNING e.tenant_id, {qualified('e', ENDPOINT_COLUMNS)}",
        list(reasons),
        list(reasons.values()),
    )
    return [
        (r["tenant_id"], endpoint_of({k: v for k, v in r.items() if k != "tenant_id"}))
        for r in rows
    ]


def qualified(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


# --- queues of an endpoint -------------------------------------------------------------------


async def pause_deliveries(conn: asyncpg.Connection, endpoint_ids: Sequence[UUID]) -> None:
    """A disabled endpoint's queue waits (next_attempt_at NULL) until it is enabled again."""
    await conn.execute(
        "UPDATE webhooks.deliveries SET next_attempt_at = NULL, updated_at = now()"
        " WHERE endpoint_id = ANY($1::uuid[]) AND status = 'pending'"
        " AND next_attempt_at IS NOT NULL",
        list(endpoint_ids),
    )


async def resume_deliveries(conn: asyncpg.Connection, endpoint_ids: Sequence[UUID]) -> None:
    await conn.execute(
        "UPDATE webhooks.deliveries SET next_attempt_at = now(), updated_at = now()"
        " WHERE endpoint_id = ANY($1::uuid[]) AND status = 'pending' AND next_attempt_at IS NULL",
        list(endpoint_ids),
    )
    await notify_dispatcher(conn)


# --- secrets at rest ---------------------------------------------------------------------


async def stored_secrets(
    db: Executor, after: UUID | None, limit: int, *, plaintext_only: bool
) -> list[asyncpg.Record]:
    """Endpoints' stored secrets by id, a page after `after`; with `plaintext_only`, only
    those holding a secret not encrypted yet."""
    return await db.fetch(
        "SELECT id, secret, previous_secret FROM webhooks.endpoints"
        " WHERE ($1::uuid IS NULL OR id > $1)"
        "   AND (NOT $3 OR secret LIKE 'whsec\\_%' OR previous_secret LIKE 'whsec\\_%')"
        " ORDER BY id LIMIT $2",
        after,
        limit,
        plaintext_only,
    )


async def replace_secrets(
    db: Executor, endpoint_id: UUID, old: tuple[str, str | None], new: tuple[str, str | None]
) -> bool:
    """Store `new` (secret, previous) if `old` is still what is stored (a rotation meanwhile
    wins: its secrets are sealed already)."""
    status = await db.execute(
        "UPDATE webhooks.endpoints SET secret = $4, previous_secret = $5"
        " WHERE id = $1 AND secret = $2 AND previous_secret IS NOT DISTINCT FROM $3",
        endpoint_id,
        *old,
        *new,
    )
    return status.endswith(" 1")
