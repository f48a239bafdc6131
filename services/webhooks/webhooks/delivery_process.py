"""Deliveries also sent from processes of their own (`WEBHOOK_DELIVERY_PROCESSES`, default 1).

The service's process serves the API, turns events into deliveries and sends, with its own
dispatcher, those its consumer hands over (`webhooks.handoff`: a steady flow never waits for
a claim). The processes it starts beside itself (`python -m webhooks.delivery_process`, with
its environment) claim and send the rest, so that a burst is not sent by the one event loop
that also runs the consumer's batches, and the service uses more than one core. Each is a
dispatcher as the service's own is (`webhooks.dispatcher`: claims, leases, the express lane,
ordered subjects, outcomes) with its own `LISTEN` for new deliveries; every dispatcher, the
service's included, takes an equal share of every in-flight cap
(`WebhookSettings.dispatcher_share`), so that together they stay within each cap.

The service watches its delivery processes as one background loop (`delivery_processes` in
`/ready`): when one exits, every one is stopped and started again by the loop's supervisor.
A stopped service stops them first (`SIGTERM`: they finish their requests in flight within
`WEBHOOK_SHUTDOWN_GRACE_SECONDS`, record them and hand back what they held). A delivery
process whose service is gone (its standard input closes: killed, crashed) exits at once,
as a crash would: what it had leased is due again when the lease ends, and it never goes on
sending beside the service's next processes.

The attempts a delivery process counts (`fulfil_webhooks_delivery_attempts_total`) reach the
service's `/metrics` as lines of totals on its standard output, once a second.
"""

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

import orjson
import uvloop

from fulfilkit.logs import configure_logging
from fulfilkit.metrics import WEBHOOK_DELIVERIES
from fulfilkit.service import Runtime
from fulfilkit.supervise import Supervisor
from fulfilkit.tracing import setup_tracing
from webhooks.dispatcher import dispatch
from webhooks.resources import Resources
from webhooks.sealing import SecretSealer
from webhooks.sender import Sender
from webhooks.settings import WebhookSettings
from webhooks.store import NOTIFY_CHANNEL
from webhooks.wakeup import NotifyListener

log = logging.getLogger(__name__)

MODULE = "webhooks.delivery_process"
REPORT_SECONDS = 1.0
EXIT_PARENT_GONE = 70
STOP_MARGIN_SECONDS = 15.0  # beyond the shutdown grace, before a process is killed


# --- in the service's process ------------------------------------------------------------------


async def run_delivery_processes(runtime: Runtime[Resources]) -> None:
    """Start `WEBHOOK_DELIVERY_PROCESSES` delivery processes and watch them; raises when one
    exits (the supervisor starts them all again), stops them when cancelled."""
    settings = runtime.resources.settings
    processes: list[asyncio.subprocess.Process] = []
    watchers: list[asyncio.Task[int]] = []
    try:
        for _ in range(settings.webhook_delivery_processes):
            processes.append(await _start())
            watchers.append(asyncio.create_task(_watch(processes[-1])))
        done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        code = next(iter(done)).result()
        raise RuntimeError(f"a webhook delivery process exited (status {code})")
    finally:
        await _stop(processes, settings.webhook_shutdown_grace_seconds + STOP_MARGIN_SECONDS)
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)


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


async def _watch(process: asyncio.subprocess.Process) -> int:
    """Counts the attempts the process reports until it closes its output; its exit status."""
    counted: dict[str, float] = {}
    assert process.stdout is not None
    async for line in process.stdout:
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


# --- in a delivery process ---------------------------------------------------------------------


def attempt_totals() -> dict[str, float]:
    """This process's `fulfil_webhooks_delivery_attempts_total`, by outcome."""
    return {
        sample.labels["outcome"]: sample.value
        for metric in WEBHOOK_DELIVERIES.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


class _AttemptReport:
    """Writes this process's attempt totals to its standard output when they changed."""

    def __init__(self) -> None:
        self._reported: Mapping[str, Any] = {}

    def write(self) -> None:
        totals = attempt_totals()
        if totals != self._reported:
            sys.stdout.buffer.write(orjson.dumps(totals) + b"\n")
            sys.stdout.buffer.flush()
            self._reported = totals

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            self.write()


class _ParentWatch(asyncio.Protocol):
    """The service holds this process's standard input open; its end means the service is
    gone: exit at once, as a crash would."""

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        self.connection_lost(None)

    def connection_lost(self, exc: Exception | None) -> None:
        log.error("the webhooks service is gone; this delivery process exits")
        os._exit(EXIT_PARENT_GONE)


async def serve(settings: WebhookSettings) -> None:
    """One dispatcher (with its own LISTEN) on this process's share of the caps, until
    SIGTERM or SIGINT; then it stops as the service's own dispatcher does."""
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(_ParentWatch, sys.stdin)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    share = settings.dispatcher_share()
    sealer = SecretSealer(settings.secret_keys)
    sender = Sender(share)
    due = asyncio.Event()
    listener = NotifyListener(settings.database_url, NOTIFY_CHANNEL, due.set)
    loops = Supervisor(
        first_delay=settings.loop_restart_first_seconds,
        max_delay=settings.loop_restart_max_seconds,
    )
    loops.start(
        "dispatcher",
        functools.partial(dispatch, share, sender, sealer, due, lambda: listener.connected),
    )
    loops.start("listener", listener.run)
    report = _AttemptReport()
    loops.start("attempts_report", report.run)
    # What exists now lives as long as the process: out of the collector's full passes.
    gc.collect()
    gc.freeze()
    try:
        await stop.wait()
    finally:
        await loops.stop(timeout=settings.webhook_shutdown_grace_seconds + 10)
        await sender.close()
        report.write()  # what the last outcomes recorded added


def main() -> None:
    settings = WebhookSettings()
    configure_logging("webhooks", settings.log_level, settings.log_format)
    setup_tracing("webhooks")
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
