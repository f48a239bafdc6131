"""Keeps storage bounded: finished deliveries (payloads and attempt logs) older than
`WEBHOOK_RETENTION_SECONDS` are deleted, in small batches, every
`WEBHOOK_PRUNE_INTERVAL_SECONDS`. (Consumed event ids go by `fulfilkit.retention`, as in
every service.)

Idempotency keys of endpoint creation and secret rotation go after
`WEBHOOK_IDEMPOTENCY_TTL_SECONDS`. Pending deliveries are never pruned, whatever their age.
Replicas may prune at the same time; they skip each other's rows.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

from fulfilkit.service import Runtime
from webhooks import store
from webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

PRUNE_BATCH = 5000


async def prune(pool: asyncpg.Pool, older_than: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete everything past `older_than`, one short transaction per batch; returns the count."""
    return await _in_batches(store.prune_finished, pool, older_than, batch)


async def _in_batches(
    delete: Callable[[asyncpg.Pool, timedelta, int], Awaitable[int]],
    pool: asyncpg.Pool, older_than: timedelta, batch: int = PRUNE_BATCH,
) -> int:
    removed = 0
    while (n := await delete(pool, older_than, batch)) > 0:
        removed += n
        if n < batch:
            break
    return removed


async def run_pruner(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, WebhookSettings)
    older_than = timedelta(seconds=settings.webhook_retention_seconds)
    keys_older_than = timedelta(seconds=settings.webhook_idempotency_ttl_seconds)
    while True:
        try:
            if removed := await prune(runtime.pool, older_than):
                log.info("pruned %d webhook rows older than %s", removed, older_than)
            if removed := await _in_batches(store.prune_idempotency_keys, runtime.pool,
                                            keys_older_than):
                log.info("pruned %d idempotency keys older than %s", removed, keys_older_than)
        except Exception as exc:  # the pruner must outlive any outage
            log.warning("cannot prune webhook deliveries, retrying later: %r", exc)
        await asyncio.sleep(settings.webhook_prune_interval_seconds)
