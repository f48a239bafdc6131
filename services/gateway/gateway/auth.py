"""Who is calling: API keys (issued, hashed, looked up with a short cache), scopes, admin token."""

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, get_args
from uuid import UUID, uuid4

import asyncpg

from fulfilkit.http.problems import Problem
from gateway import store

API_KEY_PREFIX = "fk_"
SHOWN_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
MAX_API_KEY_LENGTH = 128

ScopeName = Literal[
    "sales:read", "sales:write",
    "stock:read", "stock:write",
    "fulfillment:read", "fulfillment:write",
    "webhooks:read", "webhooks:write",
    "admin",
]
SCOPES: tuple[str, ...] = get_args(ScopeName)
READ_METHODS = frozenset({"GET", "HEAD"})


ADMIN_ONLY_PATHS = ("/api/v1/stock/integrity",)


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
        id=uuid4(), secret=secret, key_hash=hash_api_key(secret),
        prefix=secret[:SHOWN_PREFIX_LENGTH], scopes=tuple(dict.fromkeys(scopes)),
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
    """Looks API keys up by hash, remembering answers (found or not) for `ttl_seconds`.

    A key revoked through another gateway process keeps working here for at most that long.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[bytes, tuple[float, Caller | None]] = {}

    async def caller(self, secret: str) -> Caller | None:
        if not secret.startswith(API_KEY_PREFIX) or len(secret) > MAX_API_KEY_LENGTH:
            return None
        key_hash = hash_api_key(secret)
        now = self._clock()
        cached = self._entries.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await store.find_active_key(self._pool, key_hash)
        caller = Caller(key.id, key.tenant_id, frozenset(key.scopes)) if key else None
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key_hash] = (now + self._ttl, caller)
        return caller

    def forget(self, key_id: UUID) -> None:
        stale = [h for h, (_, c) in self._entries.items() if c is not None and c.key_id == key_id]
        for key_hash in stale:
            del self._entries[key_hash]
