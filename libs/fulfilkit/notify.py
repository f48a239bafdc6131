"""Wait in a request for something a consumer will commit later, on any replica.

Writers call `pg_notify(channel, key)` inside their transaction; PostgreSQL delivers the
notification on commit to every listening process, so a request waiting in replica A is
woken by a consumer running in replica B.

The listening connection can be lost (PostgreSQL restarts, say): `run` raises then, and its
supervisor starts it again. Notifications sent in between are lost, so a wait that was not
covered by one listening connection from start to end asks `settled` instead, every
`poll_interval`, until the keys are settled or its time is up.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection

import asyncpg

# Which of these keys are settled already (read from the database).
Settled = Callable[[Collection[str]], Awaitable[Collection[str]]]

KEEPALIVE_SECONDS = 5.0


class ListenerLost(ConnectionError):
    """The connection that listened for notifications is gone."""


class Waiter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channel: str,
        settled: Settled | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        self._pool = pool
        self._channel = channel
        self._settled = settled
        self._poll_interval = poll_interval
        self._futures: dict[str, list[asyncio.Future[None]]] = {}
        self._listening = False
        self._generation = 0  # moves whenever listening starts or stops

    @property
    def listening(self) -> bool:
        return self._listening

    async def run(self) -> None:
        """Listen until the connection is lost, then raise `ListenerLost` (never returns)."""
        lost = asyncio.Event()
        async with self._pool.acquire() as conn:
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(self._channel, self._on_notify)
            self._listening, self._generation = True, self._generation + 1
            try:
                while not lost.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), KEEPALIVE_SECONDS)
                        break
                    # a connection can die without a word (a server killed, say)
                    await conn.execute("SELECT 1", timeout=KEEPALIVE_SECONDS)
            finally:
                self._listening, self._generation = False, self._generation + 1
                with contextlib.suppress(Exception):
                    await conn.remove_listener(self._channel, self._on_notify)
        raise ListenerLost(f"the listener on {self._channel} lost its connection")

    def _on_notify(self, _conn: object, _pid: int, _channel: str, key: str) -> None:
        self._wake(key)

    def _wake(self, key: str) -> None:
        for future in self._futures.pop(key, []):
            if not future.done():
                future.set_result(None)

    def expect(self, key: str) -> asyncio.Future[None]:
        """Register interest before the write that may trigger the notification."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(key, []).append(future)
        return future

    async def wait_all(self, futures: dict[str, asyncio.Future[None]], seconds: float) -> None:
        """Wait, up to `seconds` in all, until every key has been notified or time is up."""
        deadline = time.monotonic() + seconds
        covered = self._generation if self._listening else None
        try:
            while pending := [f for f in futures.values() if not f.done()]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if covered is not None and covered == self._generation:
                    # listened all along: sleep until notified, checking now and then that
                    # the listener is still there
                    await asyncio.wait(pending, timeout=min(left, 1.0))
                    continue
                if self._settled is None:
                    return  # no listener and no way to look: answer now, not at the deadline
                covered = None
                await self._poll([k for k, f in futures.items() if not f.done()])
                if any(not f.done() for f in futures.values()):
                    await asyncio.wait(pending, timeout=min(left, self._poll_interval))
        finally:
            for key, future in futures.items():
                self.forget(key, future)

    async def _poll(self, keys: list[str]) -> None:
        assert self._settled is not None
        try:
            settled = await self._settled(keys)
        except Exception:  # the database is gone too: the wait just runs on
            return
        for key in settled:
            self._wake(key)

    def forget(self, key: str, future: asyncio.Future[None]) -> None:
        waiting = self._futures.get(key, [])
        if future in waiting:
            waiting.remove(future)
        if not waiting:
            self._futures.pop(key, None)
