import asyncio
from types import SimpleNamespace
from uuid import uuid4

import pytest

from fulfilkit.http.problems import Problem
from gateway.auth import KeyCache
from gateway.domain import (
    SCOPES,
    ApiKey,
    bearer_token,
    hash_api_key,
    is_admin,
    new_api_key,
    required_scope,
    route_for,
    route_template,
    upstream_path,
    with_public_origin,
)
from gateway.forwarding import caller_of
from gateway.ratelimit import RateLimiter


@pytest.mark.parametrize(
    ("method", "path", "service", "scope"),
    [
        ("GET", "/api/v1/sales", "orders", "sales:read"),
        ("HEAD", "/api/v1/sales/S-1", "orders", "sales:read"),
        ("POST", "/api/v1/sales/cancel", "orders", "sales:write"),
        ("POST", "/api/v1/sales/batch", "orders", "sales:write"),
        ("PATCH", "/api/v1/products/SKU-1", "stock", "stock:write"),
        ("GET", "/api/v1/locations", "stock", "stock:read"),
        ("POST", "/api/v1/stock/stock-records/change", "stock", "stock:write"),
        ("GET", "/api/v1/fulfillment/fulfillments/1", "fulfilment", "fulfillment:read"),
        ("DELETE", "/api/v1/webhooks/endpoints/1", "webhooks", "webhooks:write"),
        ("put", "/api/v1/webhooks/endpoints/1", "webhooks", "webhooks:write"),
        ("GET", "/api/v1/stock/integrity", "stock", "admin"),
        ("POST", "/api/v1/stock/integrity/rebuild", "stock", "admin"),
    ],
)
def test_a_path_maps_to_its_service_and_scope(
    method: str, path: str, service: str, scope: str
) -> None:
    route = route_for(path)
    assert route is not None and route.service == service
    assert required_scope(route.area, method, path) == scope


@pytest.mark.parametrize(
    "path", ["/api/v1", "/api/v1/", "/api/v1/admin/x", "/api/v1/salesx", "/api/v2/sales", "/x"]
)
def test_paths_nobody_serves_have_no_route(path: str) -> None:
    assert route_for(path) is None


@pytest.mark.parametrize(
    ("raw_path", "path", "forwarded"),
    [
        (b"/api/v1/products/A%2FB", "/api/v1/products/A/B", "/api/v1/products/A%2FB"),
        (b"/api/v1/sales/", "/api/v1/sales", "/api/v1/sales"),
        ("/api/v1/products/café".encode(), "", "/api/v1/products/caf%C3%A9"),
        (None, "/api/v1/products/a b", "/api/v1/products/a%20b"),
    ],
)
def test_the_forwarded_path_keeps_the_clients_encoding(
    raw_path: bytes | None, path: str, forwarded: str
) -> None:
    assert upstream_path(raw_path, path) == forwarded


@pytest.mark.parametrize(
    ("value", "public"),
    [
        (
            '<http://10.0.0.5:8001/api/v1/sales?offset=100&limit=100>; rel="next", '
            '<http://orders:8000/api/v1/sales?offset=0>; rel="prev"',
            '<https://api.example.com/api/v1/sales?offset=100&limit=100>; rel="next", '
            '<https://api.example.com/api/v1/sales?offset=0>; rel="prev"',
        ),
        (
            "http://stock:8000/api/v1/products/SKU-1",
            "https://api.example.com/api/v1/products/SKU-1",
        ),
        ("/api/v1/sales/S-1", "/api/v1/sales/S-1"),
        ("https://elsewhere.example/docs/api/v1", "https://elsewhere.example/docs/api/v1"),
        ("http://orders:8000/api/v10", "http://orders:8000/api/v10"),
    ],
)
def test_links_to_the_api_point_at_the_gateway(value: str, public: str) -> None:
    assert with_public_origin(value, "https://api.example.com") == public


def test_every_route_area_has_read_and_write_scopes() -> None:
    for area in ("sales", "stock", "fulfillment", "webhooks"):
        assert {f"{area}:read", f"{area}:write"} <= set(SCOPES)


def test_a_new_key_is_shown_once_and_stored_as_a_hash() -> None:
    key = new_api_key(["sales:read", "sales:read", "stock:read"])
    assert key.secret.startswith("fk_") and len(key.secret) > 40
    assert key.key_hash == hash_api_key(key.secret) and len(key.key_hash) == 32
    assert key.secret.startswith(key.prefix) and len(key.prefix) < len(key.secret) // 2
    assert key.scopes == ("sales:read", "stock:read")
    assert new_api_key(SCOPES).secret != new_api_key(SCOPES).secret


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer fk_a", "fk_a"),
        ("bearer  fk_a ", "fk_a"),
        ("Basic abc", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_the_admin_token_must_match_exactly() -> None:
    assert is_admin("Bearer s3cret-admin", "s3cret-admin")
    assert not is_admin("Bearer s3cret-admi", "s3cret-admin")
    assert not is_admin("Bearer s3cret-admïn", "s3cret-admin")
    assert not is_admin(None, "s3cret-admin")


class FakePool:
    """Answers `find_active_key` from a dict and counts the lookups."""

    def __init__(self, keys: dict[bytes, ApiKey]) -> None:
        self.keys = keys
        self.lookups = 0

    async def fetchrow(self, query: str, key_hash: bytes) -> dict | None:
        self.lookups += 1
        key = self.keys.get(key_hash)
        return None if key is None else {**key.__dict__, "scopes": list(key.scopes)}


async def test_key_lookups_are_cached_for_the_ttl_found_or_not() -> None:
    issued = new_api_key(["sales:read"])
    stored = ApiKey(issued.id, uuid4(), issued.prefix, issued.scopes, None, None)  # type: ignore[arg-type]
    pool = FakePool({issued.key_hash: stored})
    now = [100.0]
    cache = KeyCache(pool, ttl_seconds=5, clock=lambda: now[0])  # type: ignore[arg-type]

    caller = await cache.caller(issued.secret)
    assert caller is not None and caller.tenant_id == stored.tenant_id
    assert caller.scopes == {"sales:read"} and caller.actor == f"key:{issued.id}"
    assert await cache.caller("fk_unknown") is None
    await cache.caller(issued.secret)
    await cache.caller("fk_unknown")
    assert pool.lookups == 2

    now[0] += 5
    await cache.caller(issued.secret)
    assert pool.lookups == 3

    cache.forget(issued.id)
    await cache.caller(issued.secret)
    assert pool.lookups == 4


async def test_tokens_that_cannot_be_keys_never_reach_the_database() -> None:
    pool = FakePool({})
    cache = KeyCache(pool, ttl_seconds=5)  # type: ignore[arg-type]
    assert await cache.caller("dev-admin-token") is None
    assert await cache.caller("fk_" + "x" * 500) is None
    assert pool.lookups == 0


def test_an_empty_admin_token_lets_nobody_in() -> None:
    assert not is_admin("Bearer anything", "")
    assert not is_admin("Bearer ", "")
    assert not is_admin(None, "")


async def test_a_flood_of_unknown_keys_never_evicts_a_key_in_use() -> None:
    issued = new_api_key(["sales:read"])
    stored = ApiKey(issued.id, uuid4(), issued.prefix, issued.scopes, None, None)  # type: ignore[arg-type]
    pool = FakePool({issued.key_hash: stored})
    cache = KeyCache(pool, ttl_seconds=60, max_entries=2, max_missing=3)  # type: ignore[arg-type]
    assert await cache.caller(issued.secret) is not None

    for n in range(1000):
        assert await cache.caller(f"fk_unknown-{n}") is None
    lookups = pool.lookups
    assert await cache.caller(issued.secret) is not None

    assert pool.lookups == lookups, "the key in use was evicted by unknown ones"
    assert len(cache) == 1 + 3
    assert cache.cached(issued.secret) == (True, await cache.caller(issued.secret))
    assert cache.cached("fk_unknown-999") == (True, None)
    assert cache.cached("fk_unknown-0") == (False, None)


async def test_keys_found_are_kept_least_recently_used_first_out() -> None:
    issued = [new_api_key(["sales:read"]) for _ in range(3)]
    pool = FakePool(
        {
            key.key_hash: ApiKey(key.id, uuid4(), key.prefix, key.scopes, None, None)  # type: ignore[arg-type]
            for key in issued
        }
    )
    cache = KeyCache(pool, ttl_seconds=60, max_entries=2)  # type: ignore[arg-type]
    first, second, third = (key.secret for key in issued)
    for secret in (first, second, first, third):  # `second` is the least recently used
        await cache.caller(secret)

    assert cache.cached(first)[1] is not None and cache.cached(third)[1] is not None
    assert cache.cached(second) == (False, None)


async def test_requests_without_a_valid_key_are_limited_before_any_database_lookup() -> None:
    issued = new_api_key(["sales:read"])
    stored = ApiKey(issued.id, uuid4(), issued.prefix, issued.scopes, None, None)  # type: ignore[arg-type]
    pool = FakePool({issued.key_hash: stored})
    state = SimpleNamespace(
        keys=KeyCache(pool, ttl_seconds=60),  # type: ignore[arg-type]
        unauthenticated=RateLimiter(rate_per_second=0.001, burst=2),
    )
    scope = {"type": "http", "client": ("198.51.100.9", 4321)}
    assert (await caller_of(state, scope, f"Bearer {issued.secret}")).key_id == issued.id  # type: ignore[arg-type]
    for n in range(2):
        with pytest.raises(Problem) as refused:
            await caller_of(state, scope, f"Bearer fk_unknown-{n}")  # type: ignore[arg-type]
        assert refused.value.code == "invalid_token"
    lookups = pool.lookups

    for authorization in ("Bearer fk_unknown-2", None, "Bearer fk_unknown-0"):
        with pytest.raises(Problem) as refused:
            await caller_of(state, scope, authorization)  # type: ignore[arg-type]
        assert refused.value.code == "rate_limit" and refused.value.headers["Retry-After"]
    assert pool.lookups == lookups, "a limited request reached the database"
    assert (await caller_of(state, scope, f"Bearer {issued.secret}")).key_id == issued.id  # type: ignore[arg-type]
    other = {"type": "http", "client": ("198.51.100.10", 4321)}
    with pytest.raises(Problem) as refused:
        await caller_of(state, other, "Bearer fk_unknown-3")  # type: ignore[arg-type]
    assert refused.value.code == "invalid_token"


class GatedPool(FakePool):
    """A FakePool whose look-ups wait until the test opens the gate, or fail when it says so."""

    def __init__(self, keys: dict[bytes, ApiKey]) -> None:
        super().__init__(keys)
        self.gate = asyncio.Event()
        self.failure: Exception | None = None

    async def fetchrow(self, query: str, key_hash: bytes) -> dict | None:
        self.lookups += 1
        await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        key = self.keys.get(key_hash)
        return None if key is None else {**key.__dict__, "scopes": list(key.scopes)}


async def test_waiting_requests_share_a_keys_look_up_and_take_no_token() -> None:
    issued = new_api_key(["sales:read"])
    stored = ApiKey(issued.id, uuid4(), issued.prefix, issued.scopes, None, None)  # type: ignore[arg-type]
    pool = GatedPool({issued.key_hash: stored})
    state = SimpleNamespace(
        keys=KeyCache(pool, ttl_seconds=60),  # type: ignore[arg-type]
        unauthenticated=RateLimiter(rate_per_second=0.001, burst=1),
    )
    scope = {"type": "http", "client": ("198.51.100.9", 4321)}
    waiting = [
        asyncio.ensure_future(caller_of(state, scope, f"Bearer {issued.secret}"))  # type: ignore[arg-type]
        for _ in range(20)
    ]
    await asyncio.sleep(0)  # every request has reached the look-up
    pool.gate.set()
    callers = await asyncio.gather(*waiting)

    assert {c.key_id for c in callers} == {issued.id}
    assert pool.lookups == 1
    with pytest.raises(Problem) as refused:  # the address's one token is still there
        await caller_of(state, scope, "Bearer fk_unknown-0")  # type: ignore[arg-type]
    assert refused.value.code == "invalid_token"


async def test_a_failed_shared_look_up_fails_its_waiters_and_is_asked_again() -> None:
    issued = new_api_key(["sales:read"])
    stored = ApiKey(issued.id, uuid4(), issued.prefix, issued.scopes, None, None)  # type: ignore[arg-type]
    pool = GatedPool({issued.key_hash: stored})
    cache = KeyCache(pool, ttl_seconds=60)  # type: ignore[arg-type]
    first = asyncio.ensure_future(cache.caller(issued.secret))
    await asyncio.sleep(0)
    assert cache.looking_up(issued.secret)
    others = [asyncio.ensure_future(cache.caller(issued.secret)) for _ in range(3)]
    first.cancel()  # the request that started it went away: the others still get an answer
    pool.failure = ConnectionResetError("database gone")
    pool.gate.set()

    results = await asyncio.gather(*others, return_exceptions=True)
    assert all(isinstance(r, ConnectionResetError) for r in results), results
    assert not cache.looking_up(issued.secret) and pool.lookups == 1
    pool.failure = None
    caller = await cache.caller(issued.secret)
    assert caller is not None and caller.key_id == issued.id and pool.lookups == 2


def test_a_forwarded_requests_span_is_named_by_a_bounded_template() -> None:
    assert route_template("/api/v1/sales") == "/api/v1/sales"
    assert route_template("/api/v1/sales/") == "/api/v1/sales"
    assert route_template("/api/v1/sales/S-1/cancel") == "/api/v1/sales/{path}"
    assert route_template("/api/v1/stock/stock-records/abc") == "/api/v1/stock/{path}"
