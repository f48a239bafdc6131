"""Deliveries: queued from events, read, queued again, pruned."""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from webhooks.domain import (
    Delivery,
    DeliveryFilter,
    DeliveryStatus,
    Destination,
    EndpointStats,
    LoggedAttempt,
    Subscription,
    status_filters,
)
from webhooks.store import Executor, notify_dispatcher

DELIVERY_COLUMNS = (
    "id, endpoint_id, event_id, event_type, subject, occurred_at, webhook_id, payload, status,"
    " attempt_count, next_attempt_at, last_attempt_at, last_status_code, last_error, created_at,"
    " updated_at, completed_at"
)


def delivery_of(row: Any, attempts: Sequence[Any] = ()) -> Delivery:
    return Delivery(
        **{**row, "payload": bytes(row["payload"])},
        attempts=[
            LoggedAttempt(**{k: v for k, v in a.items() if k != "delivery_id"}) for a in attempts
        ],
    )


# --- from events -----------------------------------------------------------------------------


async def subscriptions(db: Executor, tenant_ids: Iterable[UUID]) -> list[Subscription]:
    """The enabled endpoints of `tenant_ids`, each with where its deliveries go."""
    rows = await db.fetch(
        "SELECT id, tenant_id, event_types, filters, url, headers, secret, ordered,"
        " failing_since IS NOT NULL AS failing,"
        " CASE WHEN previous_secret_expires_at > now() THEN previous_secret END"
        "   AS previous_secret"
        " FROM webhooks.endpoints WHERE enabled AND tenant_id = ANY($1::uuid[])",
        list(set(tenant_ids)),
    )
    return [
        Subscription(
            r["id"],
            r["tenant_id"],
            tuple(r["event_types"]),
            status_filters(r["filters"]),
            Destination(
                r["url"],
                r["headers"],
                r["secret"],
                r["previous_secret"],
                r["failing"],
                r["ordered"],
            ),
        )
        for r in rows
    ]


async def insert_deliveries(
    conn: asyncpg.Connection,
    rows: Sequence[tuple[Any, ...]],
    leased: Sequence[bool] | None = None,
    lease: timedelta = timedelta(0),
) -> list[asyncpg.Record]:
    """Rows of (tenant_id, endpoint_id, event_id, event_type, webhook_id, payload, subject,
    occurred_at, traceparent), set-wise, taking `seq` in the order given (the order events arrived).
    Each is due at once, or, where `leased` says so, leased for `lease` (handed to a
    dispatcher: due when the lease ends, should that dispatcher not record an attempt).

    An (event, endpoint) pair already delivered or queued is skipped, so replays never double.
    Returns the inserted ones: `id`, `event_id`, `endpoint_id`, `leased`.
    """
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))
    return await conn.fetch(
        "INSERT INTO webhooks.deliveries"
        " (tenant_id, endpoint_id, event_id, event_type, webhook_id, payload, subject,"
        "  occurred_at, traceparent, next_attempt_at)"
        " SELECT p.tenant_id, p.endpoint_id, p.event_id, p.event_type, p.webhook_id, p.payload,"
        "        p.subject, p.occurred_at, p.traceparent,"
        "        CASE WHEN p.leased THEN now() + $11::interval ELSE now() END"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bytea[],"
        "             $7::text[], $8::timestamptz[], $9::text[], $10::bool[]) WITH ORDINALITY"
        "   AS p(tenant_id, endpoint_id, event_id, event_type, webhook_id, payload, subject,"
        "        occurred_at, traceparent, leased, position)"
        " JOIN webhooks.endpoints e"
        "   ON e.id = p.endpoint_id AND e.tenant_id = p.tenant_id AND e.enabled"
        " ORDER BY p.position"
        " ON CONFLICT (event_id, endpoint_id) DO NOTHING"
        " RETURNING id, event_id, endpoint_id, next_attempt_at > now() AS leased",
        *map(list, columns),
        list(leased) if leased is not None else [False] * len(rows),
        lease,
    )


# --- through the API ---------------------------------------------------------------------------

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
) -> tuple[list[Delivery], int]:
    """Newest first, each with its attempts."""
    args = (
        tenant_id,
        endpoint_id,
        where.status,
        where.event_type,
        where.subject,
        where.event_id,
        where.since,
        where.until,
    )
    rows = await db.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM webhooks.deliveries WHERE {_FILTERED}"
        " ORDER BY created_at DESC, id LIMIT $9 OFFSET $10",
        *args,
        limit,
        offset,
    )
    total = await db.fetchval(f"SELECT count(*) FROM webhooks.deliveries WHERE {_FILTERED}", *args)
    attempts = await _attempts_of(db, [r["id"] for r in rows])
    return [delivery_of(r, attempts[r["id"]]) for r in rows], total


# Across the tenant's endpoints (`endpoint_id` optional): its own clause, so that each
# query's plan takes its own index (by endpoint, by tenant, or by tenant and subject).
_FILTERED_TENANT_WIDE = (
    "tenant_id = $1 AND ($2::uuid IS NULL OR endpoint_id = $2)"
    " AND ($3::text IS NULL OR status = $3)"
    " AND ($4::text IS NULL OR event_type = $4) AND ($5::text IS NULL OR subject = $5)"
    " AND ($6::uuid IS NULL OR event_id = $6) AND ($7::timestamptz IS NULL OR created_at >= $7)"
    " AND ($8::timestamptz IS NULL OR created_at < $8)"
)


async def list_tenant_deliveries(
    db: Executor,
    tenant_id: UUID,
    endpoint_id: UUID | None,
    where: DeliveryFilter,
    limit: int,
    offset: int,
) -> tuple[list[Delivery], int]:
    """Every endpoint's deliveries (or one's), newest first, each with its attempts."""
    if endpoint_id is not None:
        return await list_deliveries(db, tenant_id, endpoint_id, where, limit, offset)
    args = (
        tenant_id,
        None,
        where.status,
        where.event_type,
        where.subject,
        where.event_id,
        where.since,
        where.until,
    )
    rows = await db.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM webhooks.deliveries WHERE {_FILTERED_TENANT_WIDE}"
        " ORDER BY created_at DESC, id LIMIT $9 OFFSET $10",
        *args,
        limit,
        offset,
    )
    total = await db.fetchval(
        f"SELECT count(*) FROM webhooks.deliveries WHERE {_FILTERED_TENANT_WIDE}", *args
    )
    attempts = await _attempts_of(db, [r["id"] for r in rows])
    return [delivery_of(r, attempts[r["id"]]) for r in rows], total


async def endpoint_stats(
    db: Executor, endpoint_ids: Sequence[UUID], window_hours: int
) -> dict[UUID, EndpointStats]:
    """The endpoints' health over the current hour and the `window_hours` before it, from
    the rolling table (at most `window_hours + 1` rows each)."""
    rows = await db.fetch(
        "SELECT endpoint_id, sum(succeeded + failed)::int AS deliveries,"
        " sum(failed)::int AS failed, max(last_failure_at) AS last_failure_at,"
        " (array_agg(last_failure_status ORDER BY last_failure_at DESC NULLS LAST))[1]"
        "   AS last_failure_status,"
        " (array_agg(last_failure_error ORDER BY last_failure_at DESC NULLS LAST))[1]"
        "   AS last_failure_error"
        " FROM webhooks.endpoint_stats WHERE endpoint_id = ANY($1::uuid[])"
        " AND hour >= date_trunc('hour', now()) - make_interval(hours => $2)"
        " GROUP BY endpoint_id",
        list(endpoint_ids),
        window_hours,
    )
    found = {i: EndpointStats() for i in endpoint_ids}
    for r in rows:
        found[r["endpoint_id"]] = EndpointStats(
            deliveries=r["deliveries"],
            failed=r["failed"],
            last_failure_at=r["last_failure_at"],
            last_failure_status=r["last_failure_status"] if r["last_failure_at"] else None,
            last_failure_error=r["last_failure_error"] if r["last_failure_at"] else None,
        )
    return found


async def prune_endpoint_stats(db: Executor, kept_hours: int) -> int:
    status = await db.execute(
        "DELETE FROM webhooks.endpoint_stats"
        " WHERE hour < date_trunc('hour', now()) - make_interval(hours => $1)",
        kept_hours,
    )
    return int(status.split()[-1])


async def get_delivery(db: Executor, tenant_id: UUID, delivery_id: UUID) -> Delivery | None:
    """With its attempts."""
    row = await db.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM webhooks.deliveries WHERE id = $1 AND tenant_id = $2",
        delivery_id,
        tenant_id,
    )
    if row is None:
        return None
    attempts = await _attempts_of(db, [delivery_id])
    return delivery_of(row, attempts[delivery_id])


async def _attempts_of(
    db: Executor, delivery_ids: Sequence[UUID]
) -> dict[UUID, list[asyncpg.Record]]:
    rows = await db.fetch(
        "SELECT delivery_id, attempted_at, status_code, latency_ms, response_body, error,"
        " request_headers FROM webhooks.attempts WHERE delivery_id = ANY($1::uuid[])"
        " ORDER BY delivery_id, id",
        list(delivery_ids),
    )
    found: dict[UUID, list[asyncpg.Record]] = {i: [] for i in delivery_ids}
    for row in rows:
        found[row["delivery_id"]].append(row)
    return found


async def lock_delivery(
    conn: asyncpg.Connection, tenant_id: UUID, delivery_id: UUID
) -> DeliveryStatus | None:
    """The delivery's status, locked until the caller's transaction ends."""
    return await conn.fetchval(
        "SELECT d.status FROM webhooks.deliveries d"
        " JOIN webhooks.endpoints e ON e.id = d.endpoint_id"
        " WHERE d.id = $1 AND d.tenant_id = $2 FOR UPDATE OF d",
        delivery_id,
        tenant_id,
    )


async def requeue_delivery(conn: asyncpg.Connection, delivery_id: UUID) -> None:
    """Pending again with a fresh retry schedule; waits if its endpoint is disabled."""
    await conn.execute(
        "UPDATE webhooks.deliveries d SET status = 'pending', attempt_count = 0,"
        " next_attempt_at = CASE WHEN e.enabled THEN now() END, completed_at = NULL,"
        " updated_at = now() FROM webhooks.endpoints e"
        " WHERE d.id = $1 AND e.id = d.endpoint_id",
        delivery_id,
    )
    await notify_dispatcher(conn)


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
