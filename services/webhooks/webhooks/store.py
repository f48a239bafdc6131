"""SQL for the `webhooks` schema: endpoints, deliveries and their attempts.

Lock order, everywhere: endpoint rows before delivery rows.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit.outbox import add_events
from webhooks.domain import (
    PENDING,
    DeliveryStatus,
    Outcome,
    Subscription,
    VersionConflict,
    disabled_event,
)

SCHEMA = "webhooks"
NOTIFY_CHANNEL = "webhooks_deliveries"
MANUAL_DISABLE_REASON = "disabled through the API"

Executor = asyncpg.Connection | asyncpg.Pool

ENDPOINT_COLUMNS = (
    "id, url, description, event_types, headers, enabled, disabled_reason, version,"
    " created_at, updated_at, previous_secret_expires_at"
)
DELIVERY_COLUMNS = (
    "id, endpoint_id, event_id, event_type, webhook_id, payload, status, attempt_count,"
    " next_attempt_at, last_attempt_at, last_status_code, last_error, created_at, updated_at,"
    " completed_at"
)
PATCHABLE = ("url", "description", "event_types", "headers", "enabled")


# --- endpoints -----------------------------------------------------------------------------

async def create_endpoint(
    db: Executor, tenant_id: UUID, endpoint_id: UUID, fields: Mapping[str, Any], secret: str
) -> asyncpg.Record:
    return await db.fetchrow(
        "INSERT INTO webhooks.endpoints"
        " (id, tenant_id, url, description, event_types, headers, enabled, disabled_reason,"
        "  secret)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN NULL ELSE $8 END, $9)"
        f" RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id, tenant_id, fields["url"], fields["description"], fields["event_types"],
        fields["headers"], fields["enabled"], MANUAL_DISABLE_REASON, secret,
    )


async def list_endpoints(
    db: Executor, tenant_id: UUID, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    rows = await db.fetch(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhooks.endpoints WHERE tenant_id = $1"
        " ORDER BY created_at, id LIMIT $2 OFFSET $3",
        tenant_id, limit, offset,
    )
    total = await db.fetchval(
        "SELECT count(*) FROM webhooks.endpoints WHERE tenant_id = $1", tenant_id
    )
    return rows, total


async def get_endpoint(db: Executor, tenant_id: UUID, endpoint_id: UUID) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"SELECT {ENDPOINT_COLUMNS}, secret, previous_secret FROM webhooks.endpoints"
        " WHERE id = $1 AND tenant_id = $2",
        endpoint_id, tenant_id,
    )


async def update_endpoint(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    endpoint_id: UUID,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> asyncpg.Record | None:
    """Apply a partial update in the caller's transaction; None when there is no such endpoint."""
    current = await _lock_endpoint(conn, tenant_id, endpoint_id, expected_version)
    if current is None:
        return None
    fields = {name: changes[name] for name in PATCHABLE if name in changes}
    if not fields:
        return await get_endpoint(conn, tenant_id, endpoint_id)
    toggled = "enabled" in fields and fields["enabled"] != current["enabled"]
    row = await conn.fetchrow(*_update_statement(endpoint_id, fields, toggled))
    if toggled and row["enabled"]:
        await resume_deliveries(conn, [endpoint_id])
    elif toggled:
        await pause_deliveries(conn, [endpoint_id])
    return row


async def _lock_endpoint(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, expected_version: int | None
) -> asyncpg.Record | None:
    current = await conn.fetchrow(
        "SELECT enabled, version FROM webhooks.endpoints WHERE id = $1 AND tenant_id = $2"
        " FOR UPDATE",
        endpoint_id, tenant_id,
    )
    if current is not None and expected_version not in (None, current["version"]):
        raise VersionConflict(f"the endpoint is at version {current['version']}")
    return current


def _update_statement(
    endpoint_id: UUID, fields: Mapping[str, Any], toggled: bool
) -> tuple[Any, ...]:
    args: list[Any] = [endpoint_id]
    sets = []
    for name, value in fields.items():
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    if toggled:
        args.append(None if fields["enabled"] else MANUAL_DISABLE_REASON)
        sets.append(f"disabled_reason = ${len(args)}::text")
        sets.append("failing_since = NULL")
    sql = (
        f"UPDATE webhooks.endpoints SET {', '.join(sets)}, version = version + 1,"
        f" updated_at = now() WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    )
    return (sql, *args)


async def delete_endpoint(db: Executor, tenant_id: UUID, endpoint_id: UUID) -> bool:
    deleted = await db.fetchval(
        "DELETE FROM webhooks.endpoints WHERE id = $1 AND tenant_id = $2 RETURNING id",
        endpoint_id, tenant_id,
    )
    return deleted is not None


async def rotate_secret(
    db: Executor, tenant_id: UUID, endpoint_id: UUID, secret: str, overlap: timedelta
) -> asyncpg.Record | None:
    return await db.fetchrow(
        "UPDATE webhooks.endpoints SET previous_secret = secret, secret = $3,"
        " previous_secret_expires_at = now() + $4::interval, version = version + 1,"
        " updated_at = now() WHERE id = $1 AND tenant_id = $2"
        f" RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id, tenant_id, secret, overlap,
    )


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


async def disable_endpoints(conn: asyncpg.Connection, reasons: Mapping[UUID, str]) -> int:
    """Disable the enabled ones among `reasons`, pause their queues, announce it (outbox)."""
    if not reasons:
        return 0
    rows = await conn.fetch(
        "UPDATE webhooks.endpoints e SET enabled = false, disabled_reason = r.reason,"
        " version = e.version + 1, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[]) AS r(id, reason)"
        " WHERE e.id = r.id AND e.enabled RETURNING e.id, e.tenant_id, e.url, e.disabled_reason",
        list(reasons), list(reasons.values()),
    )
    if rows:
        await pause_deliveries(conn, [r["id"] for r in rows])
        events = [disabled_event(r["tenant_id"], r["id"], r["url"], r["disabled_reason"])
                  for r in rows]
        await add_events(conn, SCHEMA, events)
    return len(rows)


# --- deliveries from events ------------------------------------------------------------------

async def subscriptions(conn: asyncpg.Connection, tenant_ids: Iterable[UUID]) -> list[Subscription]:
    rows = await conn.fetch(
        "SELECT id, tenant_id, event_types FROM webhooks.endpoints"
        " WHERE enabled AND tenant_id = ANY($1::uuid[])",
        list(set(tenant_ids)),
    )
    return [Subscription(r["id"], r["tenant_id"], tuple(r["event_types"])) for r in rows]


async def insert_deliveries(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Rows of (tenant_id, endpoint_id, event_id, event_type, webhook_id, payload), set-wise.

    An (event, endpoint) pair already delivered or queued is skipped, so replays never double.
    """
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    inserted = await conn.fetch(
        "INSERT INTO webhooks.deliveries"
        " (tenant_id, endpoint_id, event_id, event_type, webhook_id, payload, next_attempt_at)"
        " SELECT p.tenant_id, p.endpoint_id, p.event_id, p.event_type, p.webhook_id, p.payload,"
        "        now()"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bytea[])"
        "   AS p(tenant_id, endpoint_id, event_id, event_type, webhook_id, payload)"
        " JOIN webhooks.endpoints e"
        "   ON e.id = p.endpoint_id AND e.tenant_id = p.tenant_id AND e.enabled"
        " ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING id",
        *map(list, columns),
    )
    return len(inserted)


async def notify_dispatcher(conn: asyncpg.Connection) -> None:
    """Wakes the dispatchers when the caller's transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


# --- deliveries through the API --------------------------------------------------------------

async def list_deliveries(
    db: Executor,
    tenant_id: UUID,
    endpoint_id: UUID,
    status: DeliveryStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    where = "tenant_id = $1 AND endpoint_id = $2 AND ($3::text IS NULL OR status = $3)"
    rows = await db.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM webhooks.deliveries WHERE {where}"
        " ORDER BY created_at DESC, id LIMIT $4 OFFSET $5",
        tenant_id, endpoint_id, status, limit, offset,
    )
    total = await db.fetchval(
        f"SELECT count(*) FROM webhooks.deliveries WHERE {where}", tenant_id, endpoint_id, status
    )
    return rows, total


async def get_delivery(db: Executor, tenant_id: UUID, delivery_id: UUID) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM webhooks.deliveries WHERE id = $1 AND tenant_id = $2",
        delivery_id, tenant_id,
    )


async def attempts_of(
    db: Executor, delivery_ids: Sequence[UUID]
) -> dict[UUID, list[asyncpg.Record]]:
    rows = await db.fetch(
        "SELECT delivery_id, attempted_at, status_code, latency_ms, response_body, error"
        " FROM webhooks.attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, id",
        list(delivery_ids),
    )
    found: dict[UUID, list[asyncpg.Record]] = {i: [] for i in delivery_ids}
    for row in rows:
        found[row["delivery_id"]].append(row)
    return found


async def lock_delivery(
    conn: asyncpg.Connection, tenant_id: UUID, delivery_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT d.status, e.enabled FROM webhooks.deliveries d"
        " JOIN webhooks.endpoints e ON e.id = d.endpoint_id"
        " WHERE d.id = $1 AND d.tenant_id = $2 FOR UPDATE OF d",
        delivery_id, tenant_id,
    )


async def requeue_delivery(conn: asyncpg.Connection, delivery_id: UUID) -> asyncpg.Record:
    """Pending again with a fresh retry schedule; waits if its endpoint is disabled."""
    row = await conn.fetchrow(
        "UPDATE webhooks.deliveries d SET status = 'pending', attempt_count = 0,"
        " next_attempt_at = CASE WHEN e.enabled THEN now() END, completed_at = NULL,"
        " updated_at = now() FROM webhooks.endpoints e"
        f" WHERE d.id = $1 AND e.id = d.endpoint_id RETURNING {_qualified('d')}",
        delivery_id,
    )
    await notify_dispatcher(conn)
    return row


def _qualified(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in DELIVERY_COLUMNS.split(","))


# --- dispatching ---------------------------------------------------------------------------

CLAIM_SQL = """
WITH candidates AS (
    SELECT d.id, d.endpoint_id, d.next_attempt_at
    FROM webhooks.deliveries d
    WHERE d.status = 'pending' AND d.next_attempt_at <= now()
      AND NOT (d.endpoint_id = ANY($2::uuid[]))
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT c.id,
           row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.next_attempt_at) AS rank,
           coalesce(s.slots, $5) AS slots
    FROM candidates c
    LEFT JOIN unnest($3::uuid[], $4::int[]) AS s(endpoint_id, slots) USING (endpoint_id)
)
UPDATE webhooks.deliveries d
SET next_attempt_at = CASE WHEN e.enabled THEN now() + $6::interval END
FROM ranked r, webhooks.endpoints e
WHERE d.id = r.id AND r.rank <= r.slots AND e.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, d.webhook_id, d.payload, d.attempt_count, e.enabled, e.url,
          e.headers, e.secret,
          CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END
              AS previous_secret
"""


async def claim_due(
    db: Executor,
    limit: int,
    lease: timedelta,
    slots: Mapping[UUID, int],
    default_slots: int,
) -> list[asyncpg.Record]:
    """Lease up to `limit` due deliveries, at most `slots[endpoint]` per endpoint.

    A delivery of a disabled endpoint that is found due is parked (next_attempt_at NULL)
    and not returned as sendable (`enabled` false).
    """
    full = [endpoint for endpoint, n in slots.items() if n <= 0]
    partial = {endpoint: n for endpoint, n in slots.items() if n > 0}
    return await db.fetch(
        CLAIM_SQL, limit, full, list(partial), list(partial.values()), default_slots, lease
    )


async def release(db: Executor, delivery_ids: Sequence[UUID]) -> None:
    """Hand back leases of deliveries that were claimed but never attempted."""
    await db.execute(
        "UPDATE webhooks.deliveries SET next_attempt_at = now()"
        " WHERE id = ANY($1::uuid[]) AND status = 'pending' AND next_attempt_at IS NOT NULL",
        list(delivery_ids),
    )


async def note_endpoint_health(
    conn: asyncpg.Connection, succeeded: set[UUID], failed: set[UUID]
) -> None:
    if succeeded:
        await conn.execute(
            "UPDATE webhooks.endpoints SET failing_since = NULL"
            " WHERE id = ANY($1::uuid[]) AND failing_since IS NOT NULL",
            sorted(succeeded),
        )
    if failing := failed - succeeded:
        await conn.execute(
            "UPDATE webhooks.endpoints SET failing_since = now()"
            " WHERE id = ANY($1::uuid[]) AND failing_since IS NULL",
            sorted(failing),
        )


async def failing_for(
    conn: asyncpg.Connection, endpoint_ids: set[UUID], threshold: timedelta
) -> dict[UUID, Any]:
    """Of `endpoint_ids`, the enabled ones failing for at least `threshold`, with since when."""
    rows = await conn.fetch(
        "SELECT id, failing_since FROM webhooks.endpoints WHERE id = ANY($1::uuid[])"
        " AND enabled AND failing_since <= now() - $2::interval",
        sorted(endpoint_ids), threshold,
    )
    return {r["id"]: r["failing_since"] for r in rows}


async def record_outcomes(conn: asyncpg.Connection, outcomes: Sequence[Outcome]) -> int:
    """Finish or reschedule each delivery and store its attempt; gone deliveries are skipped."""
    updated = await conn.fetch(
        "UPDATE webhooks.deliveries d SET status = r.status,"
        " attempt_count = d.attempt_count + 1, last_attempt_at = r.attempted_at,"
        " last_status_code = r.status_code, last_error = r.error, updated_at = now(),"
        " next_attempt_at = CASE WHEN r.status = $7 AND e.enabled"
        "   THEN now() + r.retry_in * interval '1 second' END,"
        " completed_at = CASE WHEN r.status <> $7 THEN now() END"
        " FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::timestamptz[], $5::int[],"
        "             $6::text[])"
        "   AS r(id, status, retry_in, attempted_at, status_code, error),"
        "   webhooks.endpoints e"
        " WHERE d.id = r.id AND e.id = d.endpoint_id AND d.status = $7"
        " RETURNING d.id",
        [o.delivery_id for o in outcomes],
        [o.verdict.status for o in outcomes],
        [o.verdict.retry_in for o in outcomes],
        [o.attempt.attempted_at for o in outcomes],
        [o.attempt.status_code for o in outcomes],
        [o.attempt.error for o in outcomes],
        PENDING,
    )
    live = {r["id"] for r in updated}
    kept = [o for o in outcomes if o.delivery_id in live]
    await _insert_attempts(conn, kept)
    return len(kept)


async def _insert_attempts(conn: asyncpg.Connection, outcomes: Sequence[Outcome]) -> None:
    if not outcomes:
        return
    await conn.execute(
        "INSERT INTO webhooks.attempts"
        " (delivery_id, attempted_at, status_code, latency_ms, response_body, error)"
        " SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::int[], $5::text[],"
        "                      $6::text[])",
        [o.delivery_id for o in outcomes],
        [o.attempt.attempted_at for o in outcomes],
        [o.attempt.status_code for o in outcomes],
        [o.attempt.latency_ms for o in outcomes],
        [o.attempt.response_body for o in outcomes],
        [o.attempt.error for o in outcomes],
    )

