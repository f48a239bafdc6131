"""Writes attempt outcomes in batches (`record_outcomes`), retrying a batch while the database
is out, and each outcome alone when the batch as a whole fails.

A write costs about the same for one outcome as for dozens (a round trip, a statement), so
the writer lets outcomes gather for up to `WRITE_LINGER_SECONDS` before writing them, unless
one is urgent: one that something waits for (the next event of an ordered subject, a retry
to schedule) or the writer is stopping. Only the record waits, never a request; a process
that dies before the record leaves the delivery leased, sent again when the lease ends (as
it always could between an answer and its record).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final
from uuid import UUID

import asyncpg

from fulfilkit.inbox import INFRASTRUCTURE_ERRORS
from fulfilkit.metrics import webhook_attempts
from webhooks.domain import PENDING, Outcome
from webhooks.settings import WebhookSettings
from webhooks.usecases.deliveries import record_outcomes

log = logging.getLogger(__name__)

WRITE_BATCH = 500
WRITE_LINGER_SECONDS = 0.01
RETRYING = "retrying"  # the outcome label of an attempt that failed and will be retried
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
        self._urgent = asyncio.Event()  # an outcome waiting in the queue is awaited
        self._marked: frozenset[UUID] = frozenset()  # endpoints this writer marked as failing

    def put(self, outcome: Outcome, *, urgent: bool = False) -> None:
        """`urgent`: something waits for this record; write it (and what is queued) now."""
        self._queue.put_nowait(outcome)
        if urgent or outcome.verdict.status == PENDING:
            self._urgent.set()

    def stop(self) -> None:
        self._queue.put_nowait(_STOP)
        self._urgent.set()

    async def run(self) -> None:
        while True:
            items = [await self._queue.get()]
            if not self._urgent.is_set() and self._queue.qsize() < WRITE_BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), WRITE_LINGER_SECONDS)
            self._urgent.clear()
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
                webhook_attempts(
                    RETRYING if o.verdict.status == PENDING else o.verdict.status for o in batch
                )
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
        self._marked = await record_outcomes(self._pool, batch, self._disable_after, self._marked)
