"""One active instance of a background loop per schema, however many replicas run."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg


async def become_leader(conn: asyncpg.Connection, name: str, poll_interval: float) -> None:
    """Wait until this connection holds the session advisory lock `name`.

    The lock is released when the connection closes, so a crashed leader is replaced by
    the next replica that asks.
    """
    while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", name):
        await asyncio.sleep(poll_interval)


@contextlib.asynccontextmanager
async def leadership(
    pool: asyncpg.Pool,
    lock: str,
    channel: str,
    on_notify: Callable[..., None],
    poll_interval: float,
) -> AsyncIterator[asyncpg.Connection]:
    """Hold leadership `lock` and listen on `channel` for as long as the block runs; give
    both up on the way out, so the held connection goes back to the pool clean. The block
    gets the held connection: work done on it stops when the lock is lost with it."""
    async with pool.acquire() as conn:
        await become_leader(conn, lock, poll_interval)
        await conn.add_listener(channel, on_notify)
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                await conn.remove_listener(channel, on_notify)
                await conn.execute("SELECT pg_advisory_unlock_all()")
