"""Who is calling: API keys and OAuth2 access tokens looked up by hash, with a short,
bounded cache that revocations empty at once (`gateway.revocations`)."""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar
from uuid import UUID

import asyncpg

from gateway import store
from gateway.domain import Caller, hash_api_key, is_access_token, may_be_api_key

V = TypeVar("V")


class KeyCache:
    """Looks API keys and access tokens up by hash, remembering answers for `ttl_seconds`
    (an access token at most until it expires).

    Keys found and keys not found are kept apart, each a bounded LRU: a flood of unknown keys
    only ever evicts other unknown keys, never a key in use. A revocation is forgotten at once
    when its notification arrives (`forget`); without notifications (their channel down) a key
    revoked through another gateway process keeps working here for at most `ttl_seconds`.

    One look-up per key at a time: requests that miss the cache while the key is being looked
    up wait for that look-up (`looking_up`) instead of asking the database again, so a client
    opening many connections at once, or the moment its entry expires, costs one query.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
        max_missing: int = 10_000,
    ) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._clock = clock
        self._found: LruCache[Caller] = LruCache(max_entries)
        self._missing: LruCache[bool] = LruCache(max_missing)
        self._revocations = 0  # moves with every forget: a look-up it overtook is not kept
        self._lookups: dict[bytes, asyncio.Future[Caller | None]] = {}

    def cached(self, secret: str) -> tuple[bool, Caller | None]:
        """(known, caller) from memory alone: known is False when only the database can tell."""
        if not may_be_api_key(secret):
            return True, None
        key_hash = hash_api_key(secret)
        now = self._clock()
        found = self._found.get(key_hash, now)
        if found is not None:
            return True, found
        return self._missing.get(key_hash, now) is not None, None

    def looking_up(self, secret: str) -> bool:
        """Whether a look-up of `secret` is under way: waiting for it costs no database work."""
        return bool(self._lookups) and hash_api_key(secret) in self._lookups

    async def caller(self, secret: str) -> Caller | None:
        known, caller = self.cached(secret)
        if known:
            return caller
        key_hash = hash_api_key(secret)
        lookup = self._lookups.get(key_hash)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(secret, key_hash, self._revocations))
            self._lookups[key_hash] = lookup
            lookup.add_done_callback(lambda done: self._finished(key_hash, done))
        # shielded: a request that goes away does not cancel the look-up others wait for
        return await asyncio.shield(lookup)

    def _finished(self, key_hash: bytes, lookup: "asyncio.Future[Caller | None]") -> None:
        self._lookups.pop(key_hash, None)
        if not lookup.cancelled():
            lookup.exception()  # retrieved: whoever waited has it, and nobody may be left

    async def _look_up(self, secret: str, key_hash: bytes, revocations: int) -> Caller | None:
        """`revocations` as it was when the request asked: one arriving since may be this key's."""
        ttl = self._ttl
        caller: Caller | None = None
        if is_access_token(secret):
            token = await store.find_active_access_token(self._pool, key_hash)
            if token is not None:
                caller, remaining = token
                ttl = min(ttl, remaining)
        else:
            key = await store.find_active_key(self._pool, key_hash)
            if key is not None:
                caller = Caller(key.id, key.tenant_id, frozenset(key.scopes))
        expires = self._clock() + ttl
        if caller is None:
            self._missing.put(key_hash, expires, True)
            return None
        if revocations == self._revocations:  # else it may be what was revoked meanwhile
            self._found.put(key_hash, expires, caller)
            self._missing.pop(key_hash)
        return caller

    def forget(self, key_id: UUID) -> None:
        """Drops the API key `key_id`, or every access token of the client `key_id`."""
        self._revocations += 1
        self._found.drop_where(lambda caller: caller.key_id == key_id)

    def forget_all(self) -> None:
        """Drops every key found (revocations may have been missed); unknown keys stay
        unknown, since nothing revoked becomes valid."""
        self._revocations += 1
        self._found.clear()

    def __len__(self) -> int:
        return len(self._found) + len(self._missing)


class LruCache(Generic[V]):
    """Entries with an expiry time; the least recently used goes when `max_entries` is full."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, V]] = OrderedDict()

    def get(self, key: bytes, now: float) -> V | None:
        """The value, unless missing or expired (values are never None)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: bytes, expires: float, value: V) -> None:
        self._entries[key] = (expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def pop(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def drop_where(self, stale: Callable[[V], bool]) -> None:
        for key in [k for k, (_, v) in self._entries.items() if stale(v)]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
