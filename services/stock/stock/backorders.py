"""The backorder worker: retries a location's queue whenever stock there went up."""

import asyncio
import contextlib
import logging
import time

import asyncpg

from fulfilkit.db import CONNECTION_ERRORS, in_transaction
from fulfilkit.leader import leadership
from fulfilkit.service import Runtime
from stock import store
from stock.reservations import retry_backorders

log = logging.getLogger(__name__)


class BackorderWorker:
    """Stock increases leave a wake-up row per location (in their own transaction); this
    loop claims them and retries each location's queue in a transaction of its own, so a
    restock never waits for the queue. A periodic sweep wakes every location that still has
    backorders, in case a worker died after claiming a wake-up.
    """

    def __init__(
        self, pool: asyncpg.Pool, poll_interval: float = 1.0, sweep_interval: float = 30.0
    ) -> None:
        self._pool = pool
        self._poll_interval = poll_interval
        self._sweep_interval = sweep_interval
        self._wake = asyncio.Event()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Work for as long as this replica leads; raises when the leader's connection (and
        the lock with it) is lost, for its supervisor to start it again."""
        async with leadership(
            self._pool,
            "stock:backorders",
            store.BACKORDER_CHANNEL,
            self._on_notify,
            self._poll_interval,
        ) as conn:
            await self._loop(conn)

    async def _loop(self, leader: asyncpg.Connection) -> None:
        # sweep at once: wake-ups may have been missed while no one led
        last_sweep = time.monotonic() - self._sweep_interval - 1
        while True:
            if leader.is_closed():
                raise ConnectionError("the backorder worker lost its leadership connection")
            self._wake.clear()
            try:
                if time.monotonic() - last_sweep > self._sweep_interval:
                    last_sweep = time.monotonic()
                    await leader.execute("SELECT 1")  # still leading? raises if not
                    async with self._pool.acquire() as conn:
                        await store.wake_every_backordered_location(conn)
                await self.drain()
            except CONNECTION_ERRORS:
                raise  # its supervisor starts it again, after a pause, leading anew
            except Exception:  # the worker must outlive a failing retry
                log.warning("backorder retry failed; will try again", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def drain(self) -> None:
        async with self._pool.acquire() as conn:
            locations = await store.claim_wakeups(conn)
        for tenant_id, location_id in locations:

            async def retry(conn: asyncpg.Connection) -> bool:
                return await retry_backorders(conn, tenant_id, location_id)  # noqa: B023

            if await in_transaction(self._pool, retry):
                async with self._pool.acquire() as conn:
                    await store.request_backorder_retry(conn, [(tenant_id, location_id)])


async def run_backorder_worker(runtime: Runtime) -> None:
    settings = runtime.settings
    await BackorderWorker(
        runtime.pool,
        poll_interval=settings.backorder_poll_interval_seconds,  # type: ignore[attr-defined]
        sweep_interval=settings.backorder_sweep_interval_seconds,  # type: ignore[attr-defined]
    ).run()
