"""fulfilkit.idempotency on the real PostgreSQL: the key and the effect commit together."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest
from starlette.requests import Request

from fulfilkit import idempotency
from fulfilkit.db import create_pool, migrate
from fulfilkit.http.problems import Problem
from fulfilkit.idempotency import Answer
from tests.support import eventually, ref

pytestmark = pytest.mark.integration


def request(body: bytes, key: str | None, path: str = "/api/v1/things") -> Request:
    headers = [(b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"idempotency-key", key.encode()))

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "root_path": "",
    }
    return Request(scope, receive)


@pytest.fixture
async def db(infrastructure, tmp_path: Path) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    schema = ref("idem").replace("-", "_")
    (tmp_path / "001_things.sql").write_text(
        f"CREATE TABLE {schema}.things (tenant_id uuid, n int, secret text)"
    )
    pool = await create_pool(infrastructure.database_url, max_size=12)
    await migrate(pool, schema, tmp_path)
    try:
        yield pool, schema
    finally:
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.close()


def adder(schema: str, tenant: UUID, n: int, calls: list[int], fail: bool = False):
    async def work(conn: asyncpg.Connection) -> Answer:
        calls.append(n)
        await conn.execute(f"INSERT INTO {schema}.things VALUES ($1, $2)", tenant, n)
        if fail:
            raise Problem("conflict", "refused after writing")
        total = await conn.fetchval(
            f"SELECT count(*) FROM {schema}.things WHERE tenant_id = $1", tenant
        )
        return Answer(201, orjson.dumps({"rows": total}), {"Content-Type": "application/json"})

    return work


async def rows(pool: asyncpg.Pool, schema: str, tenant: UUID) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {schema}.things WHERE tenant_id = $1", tenant)


async def test_a_retry_replays_the_committed_answer_and_applies_nothing(db) -> None:
    pool, schema = db
    tenant, calls = uuid4(), []
    first = await idempotency.once(
        pool, schema, tenant, request(b"{}", "k1"), adder(schema, tenant, 1, calls)
    )
    again = await idempotency.once(
        pool, schema, tenant, request(b"{}", "k1"), adder(schema, tenant, 1, calls)
    )
    assert (
        (first.status_code, first.body) == (again.status_code, again.body) == (201, b'{"rows":1}')
    )
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/json"
    assert calls == [1] and await rows(pool, schema, tenant) == 1

    other_tenant = uuid4()
    await idempotency.once(
        pool, schema, other_tenant, request(b"{}", "k1"), adder(schema, other_tenant, 1, calls)
    )
    assert calls == [1, 1], "keys belong to one tenant"


async def test_without_a_key_every_request_runs(db) -> None:
    pool, schema = db
    tenant, calls = uuid4(), []
    for _ in range(2):
        await idempotency.once(
            pool, schema, tenant, request(b"{}", None), adder(schema, tenant, 1, calls)
        )
    assert await rows(pool, schema, tenant) == 2


async def test_a_failed_first_attempt_leaves_nothing_and_its_retry_runs(db) -> None:
    pool, schema = db
    tenant, calls = uuid4(), []
    with pytest.raises(Problem):
        await idempotency.once(
            pool, schema, tenant, request(b"{}", "k2"), adder(schema, tenant, 1, calls, fail=True)
        )
    assert await rows(pool, schema, tenant) == 0
    answer = await idempotency.once(
        pool, schema, tenant, request(b"{}", "k2"), adder(schema, tenant, 1, calls)
    )
    assert answer.body == b'{"rows":1}' and "idempotent-replayed" not in answer.headers


async def test_another_request_with_the_key_is_a_conflict(db) -> None:
    pool, schema = db
    tenant, calls = uuid4(), []
    await idempotency.once(
        pool, schema, tenant, request(b"{}", "k3"), adder(schema, tenant, 1, calls)
    )
    for other in (request(b"{ }", "k3"), request(b"{}", "k3", "/api/v1/other")):
        with pytest.raises(Problem) as raised:
            await idempotency.once(pool, schema, tenant, other, adder(schema, tenant, 2, calls))
        assert raised.value.status == 409 and "different request" in raised.value.detail
    assert calls == [1]


async def test_concurrent_duplicates_wait_for_the_first_and_replay_it(db) -> None:
    pool, schema = db
    tenant, calls = uuid4(), []
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(conn: asyncpg.Connection) -> Answer:
        started.set()
        await release.wait()
        return await adder(schema, tenant, 1, calls)(conn)

    first = asyncio.create_task(idempotency.once(pool, schema, tenant, request(b"{}", "k4"), slow))
    await started.wait()
    duplicates = [
        asyncio.create_task(
            idempotency.once(
                pool, schema, tenant, request(b"{}", "k4"), adder(schema, tenant, 9, calls)
            )
        )
        for _ in range(5)
    ]
    await eventually(
        lambda: pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE $1",
            f"INSERT INTO {schema}.idempotent_requests%",
        ),
        lambda n: n == 5,
        what="five duplicates waiting on the key",
    )
    assert calls == [] and not any(d.done() for d in duplicates)
    release.set()
    answers = await asyncio.gather(first, *duplicates)
    assert {a.body for a in answers} == {b'{"rows":1}'}
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None] + ["true"] * 5
    assert calls == [1] and await rows(pool, schema, tenant) == 1


async def test_an_answer_with_a_secret_stores_what_it_keeps_and_is_rebuilt(db) -> None:
    pool, schema = db
    tenant = uuid4()

    async def create(conn: asyncpg.Connection) -> Answer:
        await conn.execute(f"INSERT INTO {schema}.things VALUES ($1, 1, 'whsec_1')", tenant)
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        return Answer(
            201, b'{"id":1,"secret":"whsec_1"}', headers, kept=Answer(201, b'{"id":1}', headers)
        )

    async def rebuild(conn: asyncpg.Connection, kept: Answer) -> Answer:
        secret = await conn.fetchval(
            f"SELECT secret FROM {schema}.things WHERE tenant_id = $1", tenant
        )
        body = {**orjson.loads(kept.body), "secret": secret}
        return Answer(kept.status_code, orjson.dumps(body), kept.headers)

    first = await idempotency.once(pool, schema, tenant, request(b"{}", "k5"), create, rebuild)
    again = await idempotency.once(pool, schema, tenant, request(b"{}", "k5"), create, rebuild)
    assert first.body == again.body == b'{"id":1,"secret":"whsec_1"}'
    stored = await pool.fetchval(
        f"SELECT body FROM {schema}.idempotent_requests WHERE tenant_id = $1", tenant
    )
    assert b"whsec" not in stored and await rows(pool, schema, tenant) == 1


async def test_old_keys_are_pruned(db) -> None:
    pool, schema = db
    tenant, calls = uuid4(), []
    await idempotency.once(
        pool, schema, tenant, request(b"{}", "old"), adder(schema, tenant, 1, calls)
    )
    await pool.execute(
        f"UPDATE {schema}.idempotent_requests SET created_at = now() - '2 days'"
        " ::interval WHERE key = 'old'"
    )
    await idempotency.once(
        pool, schema, tenant, request(b"{}", "new"), adder(schema, tenant, 2, calls)
    )
    assert await idempotency.prune(pool, schema, timedelta(hours=24)) == 1
    keys = await pool.fetch(f"SELECT key FROM {schema}.idempotent_requests")
    assert [k["key"] for k in keys] == ["new"]


async def test_a_body_standing_for_the_request_replaces_it_in_the_fingerprint(db) -> None:
    pool, schema = db
    tenant, calls = uuid4(), []

    async def send(raw: bytes, meaning: bytes) -> int:
        try:
            answer = await idempotency.once(
                pool,
                schema,
                tenant,
                request(raw, "k6"),
                adder(schema, tenant, 1, calls),
                fingerprinted_body=meaning,
            )
        except Problem as refused:
            return refused.status
        return answer.status_code

    assert await send(b'{"a":1,"credential":"x"}', b"a=1") == 201
    assert await send(b'{ "credential": "y", "a": 1 }', b"a=1") == 201, "same meaning: replayed"
    assert await send(b'{"a":1,"credential":"x"}', b"a=2") == 409
    assert calls == [1]
    stored = await pool.fetchval(
        f"SELECT fingerprint FROM {schema}.idempotent_requests WHERE tenant_id = $1", tenant
    )
    assert bytes(stored) == idempotency.fingerprint("POST", "/api/v1/things", b"a=1")


async def test_has_answer_only_once_an_answer_is_committed(db) -> None:
    pool, schema = db
    tenant, calls = uuid4(), []
    assert not await idempotency.has_answer(pool, schema, tenant, request(b"{}", None))
    assert not await idempotency.has_answer(pool, schema, tenant, request(b"{}", "k7"))
    with pytest.raises(Problem):
        await idempotency.once(
            pool, schema, tenant, request(b"{}", "k7"), adder(schema, tenant, 1, calls, fail=True)
        )
    assert not await idempotency.has_answer(pool, schema, tenant, request(b"{}", "k7"))
    await idempotency.once(
        pool, schema, tenant, request(b"{}", "k7"), adder(schema, tenant, 1, calls)
    )
    assert await idempotency.has_answer(pool, schema, tenant, request(b"{}", "k7"))
    assert not await idempotency.has_answer(pool, schema, uuid4(), request(b"{}", "k7"))
