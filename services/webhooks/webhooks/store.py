"""SQL for the `webhooks` schema: endpoints, deliveries and their attempts.

Lock order, everywhere: endpoint rows before delivery rows.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from fulfilkit.db import create_pool
from fulfilkit.outbox import add_events
from webhooks.domain import (
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
    "id, url, description, event_types, headers, enabled, ordered, disabled_reason, version,"
    " created_at, updated_at, previous_secret_expires_at, secret_generation"
)
DELIVERY_COLUMNS = (
    "id, endpoint_id, event_id, event_type, subject, occurred_at, webhook_id, payload, status,"
    " attempt_count, next_attempt_at, last_attempt_at, last_status_code, last_error, created_at,"
    " updated_at, completed_at"
)
PATCHABLE = ("url", "description", "event_types", "headers", "enabled", "ordered")


# --- endpoints -----------------------------------------------------------------------------


async def create_endpoint(
    db: Executor, tenant_id: UUID, endpoint_id: UUID, fields: Mapping[str, Any], secret: str
) -> asyncpg.Record:
    return await db.fetchrow(
        "INSERT INTO webhooks.endpoints"
        " (id, tenant_id, url, description, event_types, headers, enabled, disabled_reason,"
        "  secret, ordered)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN NULL ELSE $8 END, $9, $10)"
        f" RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id,
        tenant_id,
        fields["url"],
        fields["description"],
        fields["event_types"],
        fields["headers"],
        fields["enabled"],
        MANUAL_DISABLE_REASON,
        secret,
        fields["ordered"],
    )


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
) -> tuple[list[asyncpg.Record], int]:
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
    return rows, total


async def get_endpoint(db: Executor, tenant_id: UUID, endpoint_id: UUID) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"SELECT {ENDPOINT_COLUMNS}, secret, previous_secret FROM webhooks.endpoints"
        " WHERE id = $1 AND tenant_id = $2",
        endpoint_id,
        tenant_id,
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
    elif "ordered" in fields:
        await notify_dispatcher(conn)  # deliveries held back for order may go now
    return row


async def _lock_endpoint(
    conn: asyncpg.Connection, tenant_id: UUID, endpoint_id: UUID, expected_version: int | None
) -> asyncpg.Record | None:
    current = await conn.fetchrow(
        "SELECT enabled, version FROM webhooks.endpoints WHERE id = $1 AND tenant_id = $2"
        " FOR UPDATE",
        endpoint_id,
        tenant_id,
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
        endpoint_id,
        tenant_id,
    )
    return deleted is not None


async def rotate_secret(
    db: Executor, tenant_id: UUID, endpoint_id: UUID, secret: str, overlap: timedelta
) -> asyncpg.Record | None:
    return await db.fetchrow(
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
        " WHERE e.id = r.id AND e.enabled"
        f" RETURNING e.tenant_id, {_qualified('e', ENDPOINT_COLUMNS)}",
        list(reasons),
        list(reasons.values()),
    )
    if rows:
        await pause_deliveries(conn, [r["id"] for r in rows])
        events = [disabled_event(r["tenant_id"], r, r["disabled_reason"]) for r in rows]
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
    """Rows of (tenant_id, endpoint_id, event_id, event_type, webhook_id, payload, subject,
    occurred_at), set-wise, taking `seq` in the order given (the order events arrived).

    An (event, endpoint) pair already delivered or queued is skipped, so replays never double.
    """
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    inserted = await conn.fetch(
        "INSERT INTO webhooks.deliveries"
        " (tenant_id, endpoint_id, event_id, event_type, webhook_id, payload, subject,"
        "  occurred_at, next_attempt_at)"
        " SELECT p.tenant_id, p.endpoint_id, p.event_id, p.event_type, p.webhook_id, p.payload,"
        "        p.subject, p.occurred_at, now()"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bytea[],"
        "             $7::text[], $8::timestamptz[]) WITH ORDINALITY"
        "   AS p(tenant_id, endpoint_id, event_id, event_type, webhook_id, payload, subject,"
        "        occurred_at, position)"
        " JOIN webhooks.endpoints e"
        "   ON e.id = p.endpoint_id AND e.tenant_id = p.tenant_id AND e.enabled"
        " ORDER BY p.position"
        " ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING id",
        *map(list, columns),
    )
    return len(inserted)


async def notify_dispatcher(conn: asyncpg.Connection) -> None:
    """Wakes the dispatchers when the caller's transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


# --- deliveries through the API --------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFilter:
    """Which deliveries of an endpoint to list; None means any. `since`/`until` bound
    `created_at` (inclusive, exclusive)."""

    status: DeliveryStatus | None = None
    event_type: str | None = None
    subject: str | None = None
    event_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    def arguments(self) -> tuple[Any, ...]:
        return (self.status, self.event_type, self.subject, self.event_id, self.since, self.until)


_FILTERED = (
    "tenant_id = $1 AND endpoint_id = $2 AND ($3::text IS NULL OR status = $3)"
    " AND ($4::text IS NULL OR event_type = $4) AND ($5::text IS NULL OR subject = $5)"
    " AND ($6::uuid IS NULL OR event_id = $6) AND ($7::timestamptz IS NULL OR created_at >= $7)"
    " AND ($8::timestamptz IS NULL OR created_at < $8)"
)


async def list_deliveries(
    db: Executor,
    tenant_id: UUID,
    endpoint_id: UUID,
    where: DeliveryFilter,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    args = (tenant_id, endpoint_id, *where.arguments())
    rows = await db.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM webhooks.deliveries WHERE {_FILTERED}"
        " ORDER BY created_at DESC, id LIMIT $9 OFFSET $10",
        *args,
        limit,
        offset,
    )
    total = await db.fetchval(f"SELECT count(*) FROM webhooks.deliveries WHERE {_FILTERED}", *args)
    return rows, total


async def get_delivery(db: Executor, tenant_id: UUID, delivery_id: UUID) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM webhooks.deliveries WHERE id = $1 AND tenant_id = $2",
        delivery_id,
        tenant_id,
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
        delivery_id,
        tenant_id,
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


def _qualified(alias: str, columns: str = DELIVERY_COLUMNS) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


async def recover_failed(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    endpoint_id: UUID,
    since: datetime,
    until: datetime | None,
) -> int:
    """Queue again every failed delivery of the endpoint created in [since, until), each with
    a fresh retry schedule and its own webhook-id; they wait if the endpoint is disabled."""
    rows = await conn.fetch(
        "UPDATE webhooks.deliveries d SET status = 'pending', attempt_count = 0,"
        " next_attempt_at = CASE WHEN e.enabled THEN now() END, completed_at = NULL,"
        " updated_at = now() FROM webhooks.endpoints e"
        " WHERE e.id = $2 AND e.tenant_id = $1 AND d.endpoint_id = e.id AND d.status = 'failed'"
        " AND d.created_at >= $3 AND ($4::timestamptz IS NULL OR d.created_at < $4)"
        " RETURNING d.id",
        tenant_id,
        endpoint_id,
        since,
        until,
    )
    if rows:
        await notify_dispatcher(conn)
    return len(rows)


# --- retention -----------------------------------------------------------------------------


async def prune_finished(db: Executor, older_than: timedelta, limit: int) -> int:
    """Delete up to `limit` deliveries finished before `older_than` ago, with their attempts."""
    status = await db.execute(
        "DELETE FROM webhooks.deliveries WHERE id IN ("
        " SELECT id FROM webhooks.deliveries WHERE status <> 'pending'"
        " AND completed_at < now() - $1::interval ORDER BY completed_at LIMIT $2"
        " FOR UPDATE SKIP LOCKED)",
        older_than,
        limit,
    )
    return int(status.split()[-1])


# --- dispatching ---------------------------------------------------------------------------


async def create_dispatch_pool(dsn: str, max_size: int = 4) -> asyncpg.Pool:
    """The dispatcher's own connections, committing without waiting for the WAL flush.

    Safe for at-least-once: a claim or an outcome lost in a database crash only makes its
    delivery due again, to be sent once more (same webhook-id); the attempt it logged may be
    lost with it. Events become deliveries on the main pool, with synchronous commits.
    """
    return await create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        application_name="webhooks-dispatch",
        settings={"synchronous_commit": "off"},
    )


async def commit_durably(conn: asyncpg.Connection) -> None:
    """This transaction of the dispatcher's pool waits for the WAL flush after all."""
    await conn.execute("SET LOCAL synchronous_commit = on")


# Endpoints with pending deliveries are found by a skip scan of one index (one probe per
# endpoint, however long its queue); each gives at most its free slots of its due deliveries,
# oldest first, so a slow endpoint's backlog never takes a healthy endpoint's turn. For an
# `ordered` endpoint only the head of each subject (its earliest pending delivery) is due.
# Then each tenant keeps at most its free slots of those, oldest first, so one tenant's many
# endpoints cannot take every slot either.
CLAIM_SQL = """
WITH RECURSIVE busy(endpoint_id) AS (
    (SELECT endpoint_id FROM webhooks.deliveries WHERE status = 'pending'
     ORDER BY endpoint_id LIMIT 1)
    UNION ALL
    SELECT (SELECT d.endpoint_id FROM webhooks.deliveries d
            WHERE d.status = 'pending' AND d.endpoint_id > b.endpoint_id
            ORDER BY d.endpoint_id LIMIT 1)
    FROM busy b WHERE b.endpoint_id IS NOT NULL
), tenant_quota AS (
    SELECT * FROM unnest($6::uuid[], $7::int[]) AS t(tenant_id, slots)
), quota AS (
    SELECT b.endpoint_id, e.tenant_id, e.ordered, coalesce(s.slots, $4) AS slots
    FROM busy b
    JOIN webhooks.endpoints e ON e.id = b.endpoint_id
    LEFT JOIN unnest($2::uuid[], $3::int[]) AS s(endpoint_id, slots) USING (endpoint_id)
    LEFT JOIN tenant_quota t ON t.tenant_id = e.tenant_id
    WHERE coalesce(s.slots, $4) > 0 AND coalesce(t.slots, $8) > 0
), candidates AS (
    SELECT c.id, c.next_attempt_at, q.tenant_id
    FROM quota q
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM webhooks.deliveries d
        WHERE d.endpoint_id = q.endpoint_id AND d.status = 'pending'
          AND d.next_attempt_at <= now()
          AND (NOT q.ordered OR NOT EXISTS (
              SELECT 1 FROM webhooks.deliveries h
              WHERE h.endpoint_id = d.endpoint_id AND h.subject = d.subject
                AND h.status = 'pending' AND (h.occurred_at, h.seq) < (d.occurred_at, d.seq)))
        ORDER BY d.next_attempt_at
        LIMIT q.slots
        FOR UPDATE OF d SKIP LOCKED
    ) c
), picked AS (
    SELECT r.id, r.next_attempt_at FROM (
        SELECT c.id, c.next_attempt_at, c.tenant_id,
               row_number() OVER (PARTITION BY c.tenant_id ORDER BY c.next_attempt_at) AS n
        FROM candidates c
    ) r
    LEFT JOIN tenant_quota t ON t.tenant_id = r.tenant_id
    WHERE r.n <= coalesce(t.slots, $8)
    ORDER BY r.next_attempt_at
    LIMIT $1
)
UPDATE webhooks.deliveries d
SET next_attempt_at = CASE WHEN e.enabled THEN now() + $5::interval END
FROM picked p, webhooks.endpoints e
WHERE d.id = p.id AND e.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, d.tenant_id, d.webhook_id, d.payload, d.attempt_count,
          e.enabled, e.ordered, e.failing_since IS NOT NULL AS failing, e.url, e.headers,
          e.secret,
          CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END
              AS previous_secret
"""


@dataclass(frozen=True)
class Quotas:
    """Free slots for claiming: per endpoint and per tenant, with the defaults for those not
    listed (nothing held)."""

    endpoints: Mapping[UUID, int]
    endpoint_default: int
    tenants: Mapping[UUID, int]
    tenant_default: int


async def claim_due(
    db: Executor, limit: int, lease: timedelta, quotas: Quotas
) -> list[asyncpg.Record]:
    """Lease up to `limit` due deliveries, within each endpoint's and each tenant's quota.

    A delivery of a disabled endpoint that is found due is parked (next_attempt_at NULL)
    and not returned as sendable (`enabled` false).
    """
    return await db.fetch(
        CLAIM_SQL,
        limit,
        list(quotas.endpoints),
        list(quotas.endpoints.values()),
        quotas.endpoint_default,
        lease,
        list(quotas.tenants),
        list(quotas.tenants.values()),
        quotas.tenant_default,
    )


async def release(db: Executor, delivery_ids: Sequence[UUID]) -> None:
    """Hand back leases of deliveries that were claimed but never attempted."""
    await db.execute(
        "UPDATE webhooks.deliveries SET next_attempt_at = now()"
        " WHERE id = ANY($1::uuid[]) AND status || '' = 'pending'"  # by primary key: see RECORD_SQL
        " AND next_attempt_at IS NOT NULL",
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


async def failing_since(conn: asyncpg.Connection, endpoint_ids: set[UUID]) -> dict[UUID, datetime]:
    """Of `endpoint_ids`, the enabled ones that are failing, with since when."""
    rows = await conn.fetch(
        "SELECT id, failing_since FROM webhooks.endpoints WHERE id = ANY($1::uuid[])"
        " AND enabled AND failing_since IS NOT NULL",
        sorted(endpoint_ids),
    )
    return {r["id"]: r["failing_since"] for r in rows}


RECORD_SQL = """
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::timestamptz[], $5::int[],
                         $6::text[], $7::int[], $8::text[])
        AS r(id, status, retry_in, attempted_at, status_code, error, latency_ms, response_body)
), updated AS (
    UPDATE webhooks.deliveries d SET status = r.status,
        attempt_count = d.attempt_count + 1, last_attempt_at = r.attempted_at,
        last_status_code = r.status_code, last_error = r.error, updated_at = now(),
        next_attempt_at = CASE WHEN r.status = 'pending' AND e.enabled
            THEN now() + r.retry_in * interval '1 second' END,
        completed_at = CASE WHEN r.status <> 'pending' THEN now() END
    FROM r, webhooks.endpoints e
    WHERE d.id = r.id AND e.id = d.endpoint_id
      -- Written so that it cannot match the partial indexes' `status = 'pending'`: with a
      -- large backlog and stale statistics the planner would scan the whole queue instead
      -- of probing the primary key once per outcome.
      AND d.status || '' = 'pending'
    RETURNING d.id
)
INSERT INTO webhooks.attempts
    (delivery_id, attempted_at, status_code, latency_ms, response_body, error)
SELECT r.id, r.attempted_at, r.status_code, r.latency_ms, r.response_body, r.error
FROM r JOIN updated USING (id)
"""


async def record_outcomes(conn: asyncpg.Connection, outcomes: Sequence[Outcome]) -> int:
    """Finish or reschedule each delivery and log its attempt, in one statement; deliveries
    no longer pending (resent, pruned, deleted) are skipped."""
    status = await conn.execute(
        RECORD_SQL,
        [o.delivery_id for o in outcomes],
        [o.verdict.status for o in outcomes],
        [o.verdict.retry_in for o in outcomes],
        [o.attempt.attempted_at for o in outcomes],
        [o.attempt.status_code for o in outcomes],
        [o.attempt.error for o in outcomes],
        [o.attempt.latency_ms for o in outcomes],
        [o.attempt.response_body for o in outcomes],
    )
    return int(status.split()[-1])
