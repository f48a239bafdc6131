"""LISTEN for new deliveries on a connection of its own, reconnecting whenever it is lost.

While this is connected the dispatcher sleeps until its next delivery is due (at most
`WEBHOOK_IDLE_WAIT_SECONDS`) and a notification wakes it sooner. While it is not (the
database down, this connection being re-established) the dispatcher polls at the short
`WEBHOOK_POLL_INTERVAL_SECONDS`, and every (re)connection wakes it once, since notifications
sent while nobody listened are lost.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

LISTEN_APPLICATION_NAME = "webhooks-listen"
CONNECT_TIMEOUT_SECONDS = 5.0
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 10.0
PING_INTERVAL_SECONDS = 30.0


class NotifyListener:
    """Calls `wake()` on every notification of `channel`, and on every (re)connection."""

    def __init__(self, dsn: str, channel: str, wake: Callable[[], None]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._wake = wake
        self.connected = False

    async def run(self) -> None:
        delay = FIRST_DELAY_SECONDS
        while True:
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    server_settings={"application_name": LISTEN_APPLICATION_NAME},
                )
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(self._channel, self._on_notify)
                self.connected = True
                delay = FIRST_DELAY_SECONDS
                self._wake()
                log.info("listening for new webhook deliveries")
                await self._until_lost(conn, lost)
                log.warning("lost the connection listening for new deliveries; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot listen for new deliveries, retrying in %.1f s: %r", delay, exc)
            finally:
                self.connected = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)

    async def _until_lost(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Until the server closes the connection, or it stops answering (a silent network)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), PING_INTERVAL_SECONDS)
                return
            try:
                await conn.execute("SELECT 1", timeout=CONNECT_TIMEOUT_SECONDS)
            except Exception:
                return

    def _on_notify(self, *_: object) -> None:
        self._wake()


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _: event.set()
