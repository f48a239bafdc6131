"""Writes attempt outcomes in batches: each batch in one transaction with the endpoint health
it changes, any endpoint it disables and the outbox event announcing that."""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from fulfilkit.inbox import INFRASTRUCTURE_ERRORS
from webhooks import store
from webhooks.domain import Outcome, failing_reason, failing_too_long, gone_reason
from webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

WRITE_BATCH = 500
# Worth retrying whole: the database or the connection failed, not this batch. A server
# shutting down or restarting (`AdminShutdownError`, `CrashShutdownError`) is one of them.
RETRYABLE = (*INFRASTRUCTURE_ERRORS, asyncpg.exceptions.OperatorInterventionError)
_STOP: Final = object()


class OutcomeWriter:
    """Writes outcomes in batches until told to stop, then writes what is left; calls
    `on_written` with each batch once it is committed."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: WebhookSettings,
        on_written: Callable[[list[Outcome]], None] = lambda _: None,
    ) -> None:
        self._pool = pool
        self._disable_after = settings.webhook_disable_after_failing_seconds
        self._on_written = on_written
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._marked: set[UUID] = set()  # endpoints this writer marked as failing

    def put(self, outcome: Outcome) -> None:
        self._queue.put_nowait(outcome)

    def stop(self) -> None:
        self._queue.put_nowait(_STOP)

    async def run(self) -> None:
        while True:
            items = [await self._queue.get()]
            while not self._queue.empty() and len(items) < WRITE_BATCH:
                items.append(self._queue.get_nowait())
            batch = [i for i in items if i is not _STOP]
            if batch:
                await self._write_retrying(batch)
            if len(batch) < len(items):
                return

    async def _write_retrying(self, batch: list[Outcome]) -> None:
        delay = 0.1
        while True:
            try:
                await self._write(batch)
                self._on_written(batch)
                return
            except RETRYABLE as exc:
                log.warning("cannot record %d webhook attempts, retrying: %r", len(batch), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                if len(batch) == 1:
                    log.exception("dropping the record of an attempt of %s", batch[0].delivery_id)
                    return
                for outcome in batch:
                    await self._write_retrying([outcome])
                return

    async def _write(self, batch: list[Outcome]) -> None:
        """Endpoint health and disabling first (lock order: endpoints, then deliveries), then
        the outcomes. Health is written only when it changes, as the claim saw it."""
        succeeded = {o.endpoint_id for o in batch if o.attempt.succeeded}
        recovered = {
            o.endpoint_id
            for o in batch
            if o.attempt.succeeded and (o.endpoint_failing or o.endpoint_id in self._marked)
        }
        failing = {
            o.endpoint_id for o in batch if not o.attempt.succeeded and not o.endpoint_failing
        } - succeeded
        async with self._pool.acquire() as conn, conn.transaction():
            if recovered or failing:
                await store.note_endpoint_health(conn, recovered, failing)
            if reasons := await self._reasons_to_disable(conn, batch):
                await store.commit_durably(conn)  # it publishes an event: no async commit
                await store.disable_endpoints(conn, reasons)
            await store.record_outcomes(conn, batch)
        self._marked = (self._marked | failing) - recovered

    async def _reasons_to_disable(
        self, conn: asyncpg.Connection, batch: list[Outcome]
    ) -> dict[UUID, str]:
        reasons = {
            o.endpoint_id: gone_reason(o.attempt.status_code or 410)
            for o in batch
            if o.verdict.disable_endpoint
        }
        # Only an endpoint already failing when its delivery was claimed can be past the window.
        failing = {
            o.endpoint_id for o in batch if not o.attempt.succeeded and o.endpoint_failing
        } - set(reasons)
        if failing and self._disable_after > 0:
            now = datetime.now(UTC)
            since = await store.failing_since(conn, failing)
            reasons |= {
                endpoint: failing_reason(ts)
                for endpoint, ts in since.items()
                if failing_too_long(ts, now, self._disable_after)
            }
        return reasons
