"""The service's delivery processes (`WEBHOOK_DELIVERY_PROCESSES`) as the service sees them:
started with its resources, watched by a background loop, stopped before its resources close,
and the attempts they report added to its counter. What one of them runs:
`webhooks.delivery_process`."""

import asyncio
import contextlib
import logging
import sys
from typing import Any

import orjson

from fulfilkit.metrics import WEBHOOK_DELIVERIES
from fulfilkit.service import Runtime
from webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

MODULE = "webhooks.delivery_process"
STOP_MARGIN_SECONDS = 15.0  # beyond the shutdown grace, before a process is killed
READY_TIMEOUT_SECONDS = 30.0


class DeliveryProcesses:
    """The service's delivery processes: started with its resources, before its consumer (a
    backlog waiting in Kafka finds them dispatching), watched by `run_delivery_processes`,
    stopped before its resources close."""

    def __init__(self, count: int, stop_timeout: float) -> None:
        self._count = count
        self._stop_timeout = stop_timeout
        self._processes: list[asyncio.subprocess.Process] = []
        self._watchers: list[asyncio.Task[int]] = []

    async def start(self) -> None:
        """Starts those not running, and waits (at most `READY_TIMEOUT_SECONDS`) until each
        says it is dispatching: a service starting on a backlog then sends it at full speed
        from its first record, instead of from its own dispatcher's share alone."""
        ready: list[asyncio.Event] = []
        while len(self._processes) < self._count:
            process = await _start()
            ready.append(asyncio.Event())
            self._processes.append(process)
            self._watchers.append(asyncio.create_task(_watch(process, ready[-1])))
        if ready:
            waits = [asyncio.create_task(r.wait()) for r in ready]
            _, late = await asyncio.wait(waits, timeout=READY_TIMEOUT_SECONDS)
            for wait in late:
                wait.cancel()
            if late:
                log.warning(
                    "%d webhook delivery processes not ready within %.0f s; going on",
                    len(late),
                    READY_TIMEOUT_SECONDS,
                )

    async def watch(self) -> None:
        """Until one exits: then every one is stopped, and this raises (its supervisor calls it
        again, which starts them anew). Stops them when cancelled."""
        try:
            await self.start()
            done, _ = await asyncio.wait(self._watchers, return_when=asyncio.FIRST_COMPLETED)
            code = next(iter(done)).result()
            raise RuntimeError(
                f"a webhook delivery process stopped (status {code}); starting again"
            )
        finally:
            await self.stop()

    async def stop(self) -> None:
        processes, watchers = self._processes, self._watchers
        self._processes, self._watchers = [], []
        await _stop(processes, self._stop_timeout)
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)


def delivery_processes(settings: WebhookSettings) -> DeliveryProcesses:
    return DeliveryProcesses(
        settings.webhook_delivery_processes,
        settings.webhook_shutdown_grace_seconds + STOP_MARGIN_SECONDS,
    )


async def run_delivery_processes(runtime: Runtime[Any]) -> None:
    """Watches the service's delivery processes (`DeliveryProcesses.watch`)."""
    processes = runtime.resources.delivery_processes
    assert isinstance(processes, DeliveryProcesses)
    await processes.watch()


async def _start() -> asyncio.subprocess.Process:
    """Same interpreter and environment; its log lines go where the service's go."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        MODULE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=None,
    )


async def _watch(process: asyncio.subprocess.Process, ready: asyncio.Event) -> int:
    """Counts the attempts the process reports until it closes its output; its exit status.
    Its first line (totals, none yet) says that it is dispatching: `ready` is set."""
    counted: dict[str, float] = {}
    assert process.stdout is not None
    async for line in process.stdout:
        ready.set()
        count_reported(line, counted)
    return await process.wait()


def count_reported(line: bytes, counted: dict[str, float]) -> None:
    """Adds to this process's counter what a delivery process's `line` of totals has beyond
    `counted` (what its earlier lines had), and remembers the totals."""
    try:
        totals = orjson.loads(line)
    except orjson.JSONDecodeError:
        log.warning("a webhook delivery process wrote %r", line[:200])
        return
    if not isinstance(totals, dict):
        return
    for outcome, total in totals.items():
        if isinstance(outcome, str) and isinstance(total, int | float):
            if (more := total - counted.get(outcome, 0)) > 0:
                WEBHOOK_DELIVERIES.labels(outcome).inc(more)
            counted[outcome] = total


async def _stop(processes: list[asyncio.subprocess.Process], timeout: float) -> None:
    running = [p for p in processes if p.returncode is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), timeout)
    except TimeoutError:
        for process in running:
            if process.returncode is None:
                log.error("webhook delivery process %d did not stop; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        await asyncio.gather(*(p.wait() for p in running))
