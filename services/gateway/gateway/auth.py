"""Who is calling: API keys (issued, hashed, looked up with a short cache), scopes, admin token."""

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, get_args
from uuid import UUID, uuid4

import asyncpg

from fulfilkit.http.problems import Problem
from gateway import store

API_KEY_PREFIX = "fk_"
SHOWN_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
MAX_API_KEY_LENGTH = 128

ScopeName = Literal[
    "sales:read",
    "sales:write",
    "stock:read",
    "stock:write",
    "fulfillment:read",
    "fulfillment:write",
    "webhooks:read",
    "webhooks:write",
    "admin",
]
SCOPES: tuple[str, ...] = get_args(ScopeName)
READ_METHODS = frozenset({"GET", "HEAD"})


ADMIN_ONLY_PATHS = ("/api/v1/stock/integrity",)
# What a tenant's first key gets unless the admin asks for other scopes.
DEFAULT_SCOPES: tuple[str, ...] = tuple(s for s in SCOPES if s != "admin")
V = TypeVar("V")


def required_scope(area: str, method: str, path: str = "") -> str:
    """`area` is a scope family such as `sales`; reading needs `:read`, anything else `:write`.

    Operator endpoints under `ADMIN_ONLY_PATHS` need `admin` whatever the method.
    """
    if any(path == p or path.startswith(p + "/") for p in ADMIN_ONLY_PATHS):
        return "admin"
    return f"{area}:{'read' if method.upper() in READ_METHODS else 'write'}"


def hash_api_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_api_key(scopes: Iterable[str]) -> store.NewApiKey:
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return store.NewApiKey(
        id=uuid4(),
        secret=secret,
        key_hash=hash_api_key(secret),
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        scopes=tuple(dict.fromkeys(scopes)),
    )


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def is_admin(authorization: str | None, admin_token: str) -> bool:
    token = bearer_token(authorization)
    return token is not None and hmac.compare_digest(token.encode(), admin_token.encode())


def invalid_token(detail: str, *, missing: bool = False) -> Problem:
    challenge = 'Bearer realm="fulfil"'
    if not missing:
        challenge += ', error="invalid_token"'
    return Problem("invalid_token", detail, headers={"WWW-Authenticate": challenge})


@dataclass(frozen=True)
class Caller:
    key_id: UUID
    tenant_id: UUID
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


class KeyCache:
    """Looks API keys up by hash, remembering answers for `ttl_seconds`.

    Keys found and keys not found are kept apart, each a bounded LRU: a flood of unknown keys
    only ever evicts other unknown keys, never a key in use. A key revoked through another
    gateway process keeps working here for at most `ttl_seconds`.
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

    def cached(self, secret: str) -> tuple[bool, Caller | None]:
        """(known, caller) from memory alone: known is False when only the database can tell."""
        if not secret.startswith(API_KEY_PREFIX) or len(secret) > MAX_API_KEY_LENGTH:
            return True, None
        key_hash = hash_api_key(secret)
        now = self._clock()
        found = self._found.get(key_hash, now)
        if found is not None:
            return True, found
        return self._missing.get(key_hash, now) is not None, None

    async def caller(self, secret: str) -> Caller | None:
        known, caller = self.cached(secret)
        if known:
            return caller
        key_hash = hash_api_key(secret)
        key = await store.find_active_key(self._pool, key_hash)
        expires = self._clock() + self._ttl
        if key is None:
            self._missing.put(key_hash, expires, True)
            return None
        caller = Caller(key.id, key.tenant_id, frozenset(key.scopes))
        self._found.put(key_hash, expires, caller)
        self._missing.pop(key_hash)
        return caller

    def forget(self, key_id: UUID) -> None:
        self._found.drop_where(lambda caller: caller.key_id == key_id)

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

    def drop_where(self, stale: Callable[[V], bool]) -> None:
        for key in [k for k, (_, v) in self._entries.items() if stale(v)]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
