"""One active instance of a background loop per schema, however many replicas run."""

import asyncio

import asyncpg


async def become_leader(conn: asyncpg.Connection, name: str, poll_interval: float) -> None:
    """Wait until this connection holds the session advisory lock `name`.

    The lock is released when the connection closes, so a crashed leader is replaced by
    the next replica that asks.
    """
    while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", name):
        await asyncio.sleep(poll_interval)
