"""The background sender: lease due deliveries, POST them concurrently, record every attempt.

A delivery is leased (`next_attempt_at` pushed past the request timeout) before it is sent,
so a crash at any point leaves it due again later: at least once, never lost. Outcomes are
written in batches, each in one transaction with any endpoint it disables and the outbox
event announcing that.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import aiohttp
import asyncpg

from fulfilkit.inbox import INFRASTRUCTURE_ERRORS
from fulfilkit.service import Runtime
from webhooks import store
from webhooks.domain import (
    FAILED,
    Attempt,
    Outcome,
    decide,
    excerpt,
    failing_reason,
    gone_reason,
)
from webhooks.settings import WebhookSettings
from webhooks.signing import request_headers
from webhooks.urls import AllowList, GuardedResolver, literal_refusal

log = logging.getLogger(__name__)

SENDER_KEY = "webhooks.sender"
DRAIN_LIMIT_BYTES = 64 * 1024
WRITE_BATCH = 500
_STOP: Final = object()


# --- sending -------------------------------------------------------------------------------

class Sender:
    """One shared HTTP session: keep-alive, no redirects, no cookies, guarded DNS."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.allow = AllowList.parse(settings.allowed_hosts)
        self.timeout = settings.webhook_timeout_seconds
        connector = aiohttp.TCPConnector(
            limit=settings.webhook_max_in_flight + 16,
            ttl_dns_cache=30,
            resolver=GuardedResolver(self.allow),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )

    async def post(
        self, url: str, custom: dict[str, str], secrets: list[str], msg_id: str, body: bytes
    ) -> Attempt:
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()
        if refusal := literal_refusal(url, self.allow):
            return Attempt(attempted_at, 0, error=refusal)
        headers = request_headers(secrets, msg_id, int(time.time()), body, custom)
        try:
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                raw = await _read_excerpt(response)
                return Attempt(
                    attempted_at, _elapsed_ms(started), status_code=response.status,
                    response_body=excerpt(raw), retry_after=response.headers.get("Retry-After"),
                )
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except Exception as exc:  # any failure of one request is that attempt's error
            error = excerpt(f"{type(exc).__name__}: {exc}".encode())
        return Attempt(attempted_at, _elapsed_ms(started), error=error)

    async def close(self) -> None:
        await self._session.close()


async def _read_excerpt(response: aiohttp.ClientResponse) -> bytes:
    """The first KB; the rest is drained (to keep the connection) up to a bound."""
    kept = bytearray()
    seen = 0
    async for chunk in response.content.iter_any():
        if len(kept) < 1024:
            kept += chunk[: 1024 - len(kept)]
        seen += len(chunk)
        if seen > DRAIN_LIMIT_BYTES:
            break
    return bytes(kept)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


@dataclass(frozen=True)
class Target:
    delivery_id: UUID
    endpoint_id: UUID
    url: str
    headers: dict[str, str]
    secrets: list[str]
    webhook_id: str
    payload: bytes
    attempts_made: int

    @classmethod
    def from_row(cls, row: Any) -> "Target":
        secrets = [row["secret"]] + ([row["previous_secret"]] if row["previous_secret"] else [])
        return cls(
            row["id"], row["endpoint_id"], row["url"], dict(row["headers"]), secrets,
            row["webhook_id"], bytes(row["payload"]), row["attempt_count"],
        )


# --- recording -----------------------------------------------------------------------------

class OutcomeWriter:
    """Writes outcomes in batches until told to stop, then writes what is left."""

    def __init__(self, pool: asyncpg.Pool, settings: WebhookSettings) -> None:
        self._pool = pool
        self._disable_after = timedelta(seconds=settings.webhook_disable_after_failing_seconds)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

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
                return
            except INFRASTRUCTURE_ERRORS as exc:
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
        async with self._pool.acquire() as conn, conn.transaction():
            succeeded = {o.endpoint_id for o in batch if o.attempt.succeeded}
            failed = {o.endpoint_id for o in batch if not o.attempt.succeeded}
            await store.note_endpoint_health(conn, succeeded, failed)
            await store.disable_endpoints(conn, await self._reasons_to_disable(conn, batch))
            await store.record_outcomes(conn, batch)

    async def _reasons_to_disable(
        self, conn: asyncpg.Connection, batch: list[Outcome]
    ) -> dict[UUID, str]:
        reasons = {o.endpoint_id: gone_reason(o.attempt.status_code or 410)
                   for o in batch if o.verdict.disable_endpoint}
        exhausted = {o.endpoint_id for o in batch if o.verdict.status == FAILED} - set(reasons)
        if exhausted and self._disable_after > timedelta(0):
            since = await store.failing_for(conn, exhausted, self._disable_after)
            reasons |= {endpoint: failing_reason(ts) for endpoint, ts in since.items()}
        return reasons


# --- the loop ------------------------------------------------------------------------------

class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, sender: Sender, settings: WebhookSettings) -> None:
        self._pool = pool
        self._sender = sender
        self._settings = settings
        self._schedule = settings.retry_schedule
        self._lease = timedelta(seconds=settings.webhook_lease_seconds)
        self._cap = settings.webhook_max_in_flight_per_endpoint
        self._writer = OutcomeWriter(pool, settings)
        self._wake = asyncio.Event()
        self._tasks: dict[asyncio.Task[None], Target] = {}
        self._per_endpoint: Counter[UUID] = Counter()
        self._unrecorded: set[UUID] = set()
        self._throttled = False
        self._listener: Any = None

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer.run())
        try:
            while True:
                self._wake.clear()
                await self._listen()
                if not await self._claim_and_send():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), self._settings.webhook_poll_interval_seconds
                        )
        finally:
            await self._shutdown(writer)

    async def _claim_and_send(self) -> bool:
        """Start what is due; True when there may be more due right now."""
        limit = self._free_capacity()
        if limit <= 0:
            self._throttled = True
            return False
        slots = {endpoint: self._cap - n for endpoint, n in self._per_endpoint.items()}
        try:
            rows = await store.claim_due(self._pool, limit, self._lease, slots, self._cap)
        except Exception as exc:
            log.warning("cannot claim webhook deliveries, retrying: %r", exc)
            return False
        for row in rows:
            if row["enabled"]:
                self._start(Target.from_row(row))
        self._throttled = self._free_capacity() < self._settings.webhook_batch_size or any(
            n >= self._cap for n in self._per_endpoint.values())
        return len(rows) == limit

    def _free_capacity(self) -> int:
        free = self._settings.webhook_max_in_flight - len(self._tasks)
        return min(self._settings.webhook_batch_size, free)

    def _start(self, target: Target) -> None:
        self._per_endpoint[target.endpoint_id] += 1
        self._unrecorded.add(target.delivery_id)
        task = asyncio.create_task(self._deliver(target))
        self._tasks[task] = target
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        target = self._tasks.pop(task)
        self._per_endpoint[target.endpoint_id] -= 1
        if self._per_endpoint[target.endpoint_id] <= 0:
            del self._per_endpoint[target.endpoint_id]
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("delivery %s crashed", target.delivery_id, exc_info=task.exception())
        self._unrecorded.discard(target.delivery_id)
        if self._throttled:
            self._wake.set()

    async def _deliver(self, target: Target) -> None:
        attempt = await self._sender.post(
            target.url, target.headers, target.secrets, target.webhook_id, target.payload
        )
        verdict = decide(
            attempt.status_code, target.attempts_made + 1, self._schedule,
            now=datetime.now(UTC), retry_after=attempt.retry_after,
        )
        self._writer.put(Outcome(target.delivery_id, target.endpoint_id, attempt, verdict))
        self._unrecorded.discard(target.delivery_id)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        """LISTEN on a held connection; re-established after the database comes back."""
        if self._listener is not None and not self._listener.is_closed():
            return
        await self._unlisten()
        try:
            self._listener = await self._pool.acquire(timeout=2)
            await self._listener.add_listener(store.NOTIFY_CHANNEL, self._on_notify)
        except Exception as exc:
            log.debug("cannot listen for new deliveries yet: %r", exc)
            await self._unlisten()

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(Exception):
            await listener.remove_listener(store.NOTIFY_CHANNEL, self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool.release(listener, timeout=2)

    async def _shutdown(self, writer: asyncio.Task[None]) -> None:
        """Let posts in flight finish within the grace period, record them, hand back the rest."""
        grace = self._settings.webhook_shutdown_grace_seconds
        in_flight = set(self._tasks)
        if in_flight:
            _, unfinished = await asyncio.wait(in_flight, timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        self._writer.stop()
        try:
            await asyncio.wait_for(writer, timeout=grace + 5)
        except Exception:
            writer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(store.release(self._pool, list(self._unrecorded)), 5)
        await self._unlisten()
        await self._sender.close()


def webhook_settings(runtime: Runtime) -> WebhookSettings:
    assert isinstance(runtime.settings, WebhookSettings)
    return runtime.settings


def sender_of(runtime: Runtime) -> Sender:
    return runtime.extras[SENDER_KEY]


async def start_sender(runtime: Runtime) -> None:
    runtime.extras[SENDER_KEY] = Sender(webhook_settings(runtime))


async def run_dispatcher(runtime: Runtime) -> None:
    await Dispatcher(runtime.pool, sender_of(runtime), webhook_settings(runtime)).run()
