"""Wait in a request for something a consumer will commit later, on any replica.

Writers call `pg_notify(channel, key)` inside their transaction; PostgreSQL delivers the
notification on commit to every listening process, so a request waiting in replica A is
woken by a consumer running in replica B.
"""

import asyncio
import contextlib

import asyncpg


class Waiter:
    def __init__(self, pool: asyncpg.Pool, channel: str) -> None:
        self._pool = pool
        self._channel = channel
        self._conn: asyncpg.Connection | None = None
        self._futures: dict[str, list[asyncio.Future[None]]] = {}

    async def start(self) -> None:
        self._conn = await self._pool.acquire()
        await self._conn.add_listener(self._channel, self._on_notify)

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.remove_listener(self._channel, self._on_notify)
            await self._pool.release(self._conn)
            self._conn = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, key: str) -> None:
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
        try:
            if futures:
                await asyncio.wait(futures.values(), timeout=seconds)
        finally:
            for key, future in futures.items():
                self.forget(key, future)

    def forget(self, key: str, future: asyncio.Future[None]) -> None:
        waiting = self._futures.get(key, [])
        if future in waiting:
            waiting.remove(future)
        if not waiting:
            self._futures.pop(key, None)
