"""The dispatcher's side: claiming due deliveries, handing leases back, recording outcomes and
the endpoint health they change."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import orjson

from fulfilkit.db import create_pool
from webhooks.domain import Outcome
from webhooks.store import NOTIFY_CHANNEL, Executor


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
          e.secret, d.traceparent,
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


async def next_due_in(db: Executor) -> float | None:
    """Seconds until the earliest pending delivery is due (negative when one is due already,
    None when none is pending and scheduled), from the `deliveries_due` index."""
    return await db.fetchval(
        "SELECT extract(epoch FROM min(next_attempt_at) - now())::float8"
        " FROM webhooks.deliveries WHERE status = 'pending' AND next_attempt_at IS NOT NULL"
    )


async def release(db: Executor, delivery_ids: Sequence[UUID]) -> None:
    """Hand back leases of deliveries that were claimed but never attempted, waking every
    dispatcher (another replica's, when this one stops)."""
    await db.execute(
        "WITH released AS ("
        " UPDATE webhooks.deliveries SET next_attempt_at = now()"
        " WHERE id = ANY($1::uuid[]) AND status || '' = 'pending'"  # by primary key: see RECORD_SQL
        " AND next_attempt_at IS NOT NULL RETURNING 1)"
        " SELECT pg_notify($2, '') WHERE EXISTS (SELECT 1 FROM released)",
        list(delivery_ids),
        NOTIFY_CHANNEL,
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


# The outcomes come as one JSON array of rows (`json_to_recordset`): one parameter that the
# client encodes in one C call, where nine arrays cost asyncpg about 7 us per row to encode.
RECORD_SQL = """
WITH r AS (
    SELECT * FROM json_to_recordset($1::text::json)
        AS r(id uuid, status text, retry_in float8, attempted_at timestamptz, status_code int,
             error text, latency_ms int, response_body text, request_headers jsonb)
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
    RETURNING d.id, d.endpoint_id
), counted AS (
    -- Endpoint health (`endpoint_stats`): one row per endpoint and hour, locked in order.
    INSERT INTO webhooks.endpoint_stats AS s
        (endpoint_id, hour, succeeded, failed, last_failure_at, last_failure_status,
         last_failure_error)
    SELECT u.endpoint_id, date_trunc('hour', r.attempted_at),
           count(*) FILTER (WHERE r.status = 'succeeded'),
           count(*) FILTER (WHERE r.status = 'failed'),
           max(r.attempted_at) FILTER (WHERE NOT r.ok),
           (array_agg(r.status_code ORDER BY r.attempted_at DESC) FILTER (WHERE NOT r.ok))[1],
           (array_agg(r.error ORDER BY r.attempted_at DESC) FILTER (WHERE NOT r.ok))[1]
    FROM (SELECT *, coalesce(status_code BETWEEN 200 AND 299, false) AS ok FROM r) r
    JOIN updated u USING (id)
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (endpoint_id, hour) DO UPDATE SET
        succeeded = s.succeeded + EXCLUDED.succeeded,
        failed = s.failed + EXCLUDED.failed,
        last_failure_status = CASE WHEN EXCLUDED.last_failure_at >= s.last_failure_at
            OR s.last_failure_at IS NULL THEN EXCLUDED.last_failure_status
            ELSE s.last_failure_status END,
        last_failure_error = CASE WHEN EXCLUDED.last_failure_at >= s.last_failure_at
            OR s.last_failure_at IS NULL THEN EXCLUDED.last_failure_error
            ELSE s.last_failure_error END,
        last_failure_at = greatest(s.last_failure_at, EXCLUDED.last_failure_at)
)
INSERT INTO webhooks.attempts
    (delivery_id, attempted_at, status_code, latency_ms, response_body, error, request_headers)
SELECT r.id, r.attempted_at, r.status_code, r.latency_ms, r.response_body, r.error,
       r.request_headers
FROM r JOIN updated USING (id)
"""


async def record_outcomes(db: Executor, outcomes: Sequence[Outcome]) -> int:
    """Finish or reschedule each delivery and log its attempt, in one statement; deliveries
    no longer pending (resent, pruned, deleted) are skipped."""
    status = await db.execute(RECORD_SQL, outcome_rows(outcomes))
    return int(status.split()[-1])


def outcome_rows(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as `RECORD_SQL` reads them: a JSON array of objects (text carries no NUL:
    `excerpt` replaced it, and PostgreSQL refuses it in text)."""
    return orjson.dumps(
        [
            {
                "id": str(o.delivery_id),  # asyncpg's own UUID type, which orjson does not know
                "status": o.verdict.status,
                "retry_in": o.verdict.retry_in,
                "attempted_at": o.attempt.attempted_at,
                "status_code": o.attempt.status_code,
                "error": o.attempt.error,
                "latency_ms": o.attempt.latency_ms,
                "response_body": o.attempt.response_body,
                "request_headers": o.attempt.request_headers,
            }
            for o in outcomes
        ]
    ).decode()
