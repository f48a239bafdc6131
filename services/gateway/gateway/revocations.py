"""LISTEN for revoked API keys and OAuth2 clients, and forget them in this process's key
cache at once.

The revoking transaction sends the notification (`store.REVOCATIONS_CHANNEL`, the key's or
the client's id as payload) and PostgreSQL delivers it on commit to every listening process,
so every gateway replica refuses the credential as soon as it hears it: normally before the
revoking request has even been answered.

The listening connection (one of the pool's, held for the loop's lifetime) can be lost:
`run` raises then, and its supervisor starts it again. Notifications sent in between are
lost, so while nobody listens a revoked credential keeps working in this process for at
most `API_KEY_CACHE_SECONDS` (the cache's own bound, as before notifications existed), and
every (re)connection empties the cache of keys found, so that nothing missed in between
outlives it.
"""

import asyncio
import contextlib
import logging
from uuid import UUID

import asyncpg

from gateway.auth import KeyCache
from gateway.store import REVOCATIONS_CHANNEL

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0


class ListenerLost(ConnectionError):
    """The connection that listened for revocations is gone."""


class RevocationListener:
    def __init__(self, pool: asyncpg.Pool, keys: KeyCache) -> None:
        self._pool = pool
        self._keys = keys
        self.listening = False

    async def run(self) -> None:
        """Listen until the connection is lost, then raise `ListenerLost` (never returns)."""
        lost = asyncio.Event()
        async with self._pool.acquire() as conn:
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(REVOCATIONS_CHANNEL, self._on_notify)
            self._keys.forget_all()  # revocations sent while nobody listened are lost
            self.listening = True
            try:
                while not lost.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), KEEPALIVE_SECONDS)
                        break
                    # a connection can die without a word (a server killed, say)
                    await conn.execute("SELECT 1", timeout=KEEPALIVE_SECONDS)
            finally:
                self.listening = False
                with contextlib.suppress(Exception):
                    await conn.remove_listener(REVOCATIONS_CHANNEL, self._on_notify)
        raise ListenerLost("the listener for revoked keys and clients lost its connection")

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            credential_id = UUID(payload)
        except ValueError:
            log.warning("ignored a revocation naming no credential: %r", payload[:100])
            return
        self._keys.forget(credential_id)
