"""Keeps storage bounded: finished deliveries (payloads and attempt logs) older than
`WEBHOOK_RETENTION_SECONDS` are deleted, in small batches, every
`WEBHOOK_PRUNE_INTERVAL_SECONDS`. (Consumed event ids go by `fulfilkit.retention`, as in
every service.)

Endpoint health rows (`endpoint_stats`, one per endpoint and hour) older than
`STATS_KEPT_HOURS` go with them.

Pending deliveries are never pruned, whatever their age. Replicas may prune at the same time;
they skip each other's rows. (Idempotency keys go by `fulfilkit.idempotency`, as in every
service that keys its writes.)
"""

import logging
from datetime import timedelta

import asyncpg

from fulfilkit.retention import prune_every
from fulfilkit.service import Runtime
from webhooks.domain import STATS_KEPT_HOURS
from webhooks.resources import Resources
from webhooks.store import deliveries as store

log = logging.getLogger(__name__)

PRUNE_BATCH = 5000


async def prune(pool: asyncpg.Pool, older_than: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete everything past `older_than`, one short transaction per batch; returns the count."""
    removed = 0
    while (n := await store.prune_finished(pool, older_than, batch)) > 0:
        removed += n
        if n < batch:
            break
    await store.prune_endpoint_stats(pool, STATS_KEPT_HOURS)
    return removed


async def run_pruner(runtime: Runtime[Resources]) -> None:
    settings = runtime.resources.settings
    older_than = timedelta(seconds=settings.webhook_retention_seconds)
    await prune_every(
        settings.webhook_prune_interval_seconds,
        lambda: prune(runtime.pool, older_than),
        f"finished webhook deliveries older than {older_than}",
    )
