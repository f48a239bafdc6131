"""Deliveries also sent from processes of their own (`WEBHOOK_DELIVERY_PROCESSES`, default 0).

The service's process serves the API, turns events into deliveries and sends, with its own
dispatcher, those its consumer hands over (`webhooks.handoff`: a steady flow never waits for
a claim). The processes it starts beside itself (`python -m webhooks.delivery_process`, with
its environment) claim and send the rest, so that a burst is not sent by the one event loop
that also runs the consumer's batches, and the service uses more than one core. Each is a
dispatcher as the service's own is (`webhooks.dispatcher`: claims, leases, the express lane,
ordered subjects, outcomes) with its own `LISTEN` for new deliveries. Every dispatcher takes
a share of every in-flight cap (`WebhookSettings.dispatcher_share`), so that together they
stay within each cap: the service's own a fifth (a steady flow needs few requests in
flight), each delivery process an equal part of the rest.

The service watches its delivery processes as one background loop (`delivery_processes` in
`/ready`): when one exits, every one is stopped and started again by the loop's supervisor.
A stopped service stops them first (`SIGTERM`: they finish their requests in flight within
`WEBHOOK_SHUTDOWN_GRACE_SECONDS`, record them and hand back what they held). A delivery
process whose service is gone (its standard input closes: killed, crashed) exits at once,
as a crash would: what it had leased is due again when the lease ends, and it never goes on
sending beside the service's next processes.

The attempts a delivery process counts (`fulfil_webhooks_delivery_attempts_total`) reach the
service's `/metrics` as lines of totals on its standard output, once a second; the first
line, written as soon as it dispatches, tells the starting service that it is ready.
"""

import asyncio
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
from fulfilkit.supervise import Supervisor
from fulfilkit.tracing import setup_tracing
from webhooks.dispatcher import dispatch
from webhooks.sealing import SecretSealer
from webhooks.sender import Sender
from webhooks.settings import WebhookSettings
from webhooks.store import NOTIFY_CHANNEL
from webhooks.wakeup import NotifyListener

log = logging.getLogger(__name__)

REPORT_SECONDS = 1.0
EXIT_PARENT_GONE = 70


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

    def write(self, *, always: bool = False) -> None:
        """`always`: even when nothing changed (the first line says the process is ready)."""
        totals = attempt_totals()
        if always or totals != self._reported:
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
    share = settings.dispatcher_share(own=False)
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
    report.write(always=True)  # dispatching: the service goes on starting
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
