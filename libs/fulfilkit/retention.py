"""Keeps every inbox bounded: event ids consumed longer ago than `INBOX_RETENTION_SECONDS`
are forgotten, in small batches, every `INBOX_PRUNE_INTERVAL_SECONDS`.

An event id must be remembered for as long as Kafka may hand the event over again, so the
retention has to exceed the topics' retention (Kafka's default, which the platform keeps,
is 7 days; the inbox's default is 30).
Replicas may prune at the same time: a row deleted twice is deleted once.
"""

import asyncio
import logging
from datetime import timedelta

import asyncpg

log = logging.getLogger(__name__)

PRUNE_BATCH = 5000


async def prune_inbox(pool: asyncpg.Pool, schema: str, older_than: timedelta,
                      batch: int = PRUNE_BATCH) -> int:
    """Delete the inbox rows older than `older_than`, one short transaction per batch."""
    removed = 0
    while True:
        status = await pool.execute(
            f"DELETE FROM {schema}.inbox WHERE (consumer, event_id) IN ("
            f" SELECT consumer, event_id FROM {schema}.inbox"
            " WHERE received_at < now() - $1::interval LIMIT $2)",
            older_than, batch,
        )
        removed += (n := int(status.split()[-1]))
        if n < batch:
            return removed


async def run_inbox_pruner(pool: asyncpg.Pool, schema: str, older_than: timedelta,
                           interval_seconds: float) -> None:
    while True:
        try:
            if removed := await prune_inbox(pool, schema, older_than):
                log.info("forgot %d consumed event ids older than %s", removed, older_than)
        except Exception as exc:  # the pruner must outlive any outage
            log.warning("cannot prune the %s inbox, retrying later: %r", schema, exc)
        await asyncio.sleep(interval_seconds)
