"""The backorder worker: retries a location's queue whenever stock there went up.

Stock increases leave a wake-up row per location and a notification; the one replica that
leads claims the wake-ups and retries each location's queue in a transaction of its own.
A periodic sweep wakes every location that still has backorders, in case a worker died
after claiming a wake-up.

A plain loop under `fulfilkit.supervise`: whatever it raises (a lost database or LISTEN
connection, a failing retry) ends the run, and the supervisor logs and counts it and
starts it again after a pause, leading anew and sweeping at once.
"""

import asyncio
import contextlib
import time

from fulfilkit.leader import leadership
from fulfilkit.service import Runtime
from stock.settings import StockSettings
from stock.store.reservations import BACKORDER_CHANNEL
from stock.usecases.reservations import retry_woken_backorders, wake_every_backorder

LEADER_LOCK = "stock:backorders"


async def run_backorder_worker(runtime: Runtime[None]) -> None:
    settings = runtime.settings
    assert isinstance(settings, StockSettings)
    poll, sweep_every = (
        settings.backorder_poll_interval_seconds,
        settings.backorder_sweep_interval_seconds,
    )
    pool, woken = runtime.pool, asyncio.Event()
    async with leadership(
        pool, LEADER_LOCK, BACKORDER_CHANNEL, lambda *_: woken.set(), poll
    ) as leader:
        # a lost connection takes the lock and the LISTEN with it: stop waiting at once
        leader.add_termination_listener(woken_by_loss := lambda _: woken.set())
        try:
            last_sweep = -float("inf")  # sweep at once: wake-ups may have been missed meanwhile
            while True:
                if leader.is_closed():  # the lock and the LISTEN went with it
                    raise ConnectionError("the backorder worker lost its leadership connection")
                woken.clear()
                if time.monotonic() - last_sweep > sweep_every:
                    last_sweep = time.monotonic()
                    await leader.execute("SELECT 1")  # still leading? raises if not
                    await wake_every_backorder(pool)
                await retry_woken_backorders(pool)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), poll)
        finally:
            leader.remove_termination_listener(woken_by_loss)
