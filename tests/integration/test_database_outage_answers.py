"""A request that cannot get a database connection, because none is free in time or the
server cannot be reached, answers 503 problem+json with Retry-After, never 500 or a hang."""

import time
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI

from fulfilkit.db import create_pool
from fulfilkit.http.problems import install_problem_handlers
from tests.asgi import asgi_get

pytestmark = pytest.mark.integration


def app_reading(pool: asyncpg.Pool) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/count")
    async def count() -> dict[str, int]:
        return {"n": await pool.fetchval("SELECT 1")}

    return app


def assert_unavailable(answer: tuple[int, dict[str, str], Any]) -> None:
    status, headers, body = answer
    assert status == 503, answer
    assert headers["content-type"] == "application/problem+json", answer
    assert headers["retry-after"] == "5", answer
    assert (body["type"], body["status"], body["code"]) == (
        "urn:fulfil:problem:unavailable",
        503,
        "unavailable",
    ), body
    assert body["title"] == "Service unavailable" and body["detail"], body


async def test_no_free_connection_in_time_answers_503(infrastructure):
    pool = await create_pool(
        infrastructure.database_url, min_size=1, max_size=1, acquire_timeout=0.5
    )
    try:
        app = app_reading(pool)
        assert (await asgi_get(app, "/count"))[0] == 200
        async with pool.acquire():  # the only connection, busy
            started = time.monotonic()
            answer = await asgi_get(app, "/count")
            assert time.monotonic() - started < 5, "it gave up after its acquire timeout"
        assert_unavailable(answer)
        assert (await asgi_get(app, "/count"))[0] == 200, "and works again once one is free"
    finally:
        await pool.close()


async def test_an_unreachable_server_answers_503(infrastructure, tmp_path):
    pool = await create_pool(infrastructure.database_url, min_size=1, max_size=2)
    try:
        app = app_reading(pool)
        assert (await asgi_get(app, "/count"))[0] == 200
        # The pool's connections are dropped and new ones go where no server listens: as
        # when PostgreSQL is down.
        pool.set_connect_args(host=str(tmp_path))
        await pool.expire_connections()
        assert_unavailable(await asgi_get(app, "/count"))
    finally:
        await pool.close()
