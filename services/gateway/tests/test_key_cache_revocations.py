"""The key cache and revocations, without a database: what a revocation drops, and that a
look-up a revocation overtook is not kept."""

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from gateway.auth import KeyCache
from gateway.domain import ACCESS_TOKEN_PREFIX, ApiKey, new_api_key, new_secret


class SlowPool:
    """Answers key and token look-ups from dicts, each after `gate` opens when one is set."""

    def __init__(self) -> None:
        self.keys: dict[bytes, dict[str, Any]] = {}
        self.tokens: dict[bytes, dict[str, Any]] = {}
        self.lookups = 0
        self.gate: asyncio.Event | None = None

    async def fetchrow(self, query: str, key_hash: bytes) -> dict[str, Any] | None:
        self.lookups += 1
        if self.gate is not None:
            await self.gate.wait()
        rows = self.tokens if "access_tokens" in query else self.keys
        return rows.get(key_hash)


def stored_key(pool: SlowPool) -> tuple[str, ApiKey]:
    issued = new_api_key(["sales:read"])
    key = ApiKey(issued.id, uuid4(), issued.prefix, issued.scopes, datetime.now(UTC), None)
    pool.keys[issued.key_hash] = {**key.__dict__, "scopes": list(key.scopes)}
    return issued.secret, key


async def test_a_lookup_overtaken_by_a_revocation_is_answered_but_not_kept() -> None:
    pool = SlowPool()
    secret, key = stored_key(pool)
    cache = KeyCache(pool, ttl_seconds=60)  # type: ignore[arg-type]
    pool.gate = asyncio.Event()

    lookup = asyncio.create_task(cache.caller(secret))
    await asyncio.sleep(0)
    cache.forget(key.id)  # the notification arrives while the database answers
    pool.gate.set()
    assert (await lookup) is not None  # it started before the revocation

    assert cache.cached(secret) == (False, None)  # the next request asks the database again


async def test_a_token_is_cached_until_it_expires_and_forgotten_with_its_client() -> None:
    pool = SlowPool()
    token = new_secret(ACCESS_TOKEN_PREFIX)
    client_id, tenant_id = uuid4(), uuid4()
    pool.tokens[token.hash] = {
        "id": client_id,
        "tenant_id": tenant_id,
        "scopes": ["stock:read"],
        "remaining": 2.0,
    }
    now = [100.0]
    cache = KeyCache(pool, ttl_seconds=60, clock=lambda: now[0])  # type: ignore[arg-type]

    caller = await cache.caller(token.secret)
    assert caller is not None and caller.actor == f"client:{client_id}"
    assert caller.tenant_id == tenant_id and caller.scopes == {"stock:read"}
    now[0] += 1.9
    assert cache.cached(token.secret) == (True, caller)
    now[0] += 0.2  # past its expiry, well within the cache's 60 s
    assert cache.cached(token.secret) == (False, None)

    await cache.caller(token.secret)
    cache.forget(client_id)
    assert cache.cached(token.secret) == (False, None)


async def test_forgetting_all_drops_keys_found_but_keeps_unknown_ones_unknown() -> None:
    pool = SlowPool()
    secret, _ = stored_key(pool)
    cache = KeyCache(pool, ttl_seconds=60)  # type: ignore[arg-type]
    await cache.caller(secret)
    assert await cache.caller("fk_unknown") is None

    cache.forget_all()

    assert cache.cached(secret) == (False, None)
    assert cache.cached("fk_unknown") == (True, None)
