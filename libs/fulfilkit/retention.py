"""Keeps every inbox bounded: event ids consumed longer ago than `INBOX_RETENTION_SECONDS`
are forgotten, in small batches, every `INBOX_PRUNE_INTERVAL_SECONDS`.

An event id must be remembered for as long as Kafka may hand the event over again, so the
retention has to exceed the topics' retention (Kafka's default, which the platform keeps,
is 7 days; the inbox's default is 30).
Replicas may prune at the same time: a row deleted twice is deleted once.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

log = logging.getLogger(__name__)

PRUNE_BATCH = 5000


async def delete_older_than(
    pool: asyncpg.Pool,
    table: str,
    key: str,
    age_column: str,
    older_than: timedelta,
    batch: int = PRUNE_BATCH,
) -> int:
    """Delete the rows of `table` whose `age_column` is older than `older_than`, one short
    transaction per batch of keys (`key`: the primary key's columns); returns the count."""
    removed = 0
    while True:
        status = await pool.execute(
            f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table}"
            f" WHERE {age_column} < now() - $1::interval LIMIT $2)",
            older_than,
            batch,
        )
        removed += (n := int(status.split()[-1]))
        if n < batch:
            return removed


async def prune_every(
    interval_seconds: float,
    prune: Callable[[], Awaitable[int]],
    what: str,
) -> None:
    """Run `prune` now and every `interval_seconds`, for good: an outage costs one round."""
    while True:
        try:
            if removed := await prune():
                log.info("pruned %d %s", removed, what)
        except Exception as exc:
            log.warning("cannot prune %s, retrying later: %r", what, exc)
        await asyncio.sleep(interval_seconds)


async def prune_inbox(
    pool: asyncpg.Pool, schema: str, older_than: timedelta, batch: int = PRUNE_BATCH
) -> int:
    """Delete the inbox rows older than `older_than`, one short transaction per batch."""
    return await delete_older_than(
        pool, f"{schema}.inbox", "consumer, event_id", "received_at", older_than, batch
    )


async def run_inbox_pruner(
    pool: asyncpg.Pool, schema: str, older_than: timedelta, interval_seconds: float
) -> None:
    await prune_every(
        interval_seconds,
        lambda: prune_inbox(pool, schema, older_than),
        f"consumed event ids of {schema} older than {older_than}",
    )
