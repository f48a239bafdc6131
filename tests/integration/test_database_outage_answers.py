"""A request that cannot get a database connection, because none is free in time or the
server cannot be reached, answers 503 problem+json with Retry-After, never 500 or a hang."""

import time
from typing import Any

import asyncpg
import orjson
import pytest
from fastapi import FastAPI

from fulfilkit.db import create_pool
from fulfilkit.http.problems import install_problem_handlers

pytestmark = pytest.mark.integration


async def call(app: FastAPI, path: str) -> tuple[int, dict[str, str], Any]:
    """One GET through the app's ASGI interface, as a server would make it."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, orjson.loads(body)


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
        assert (await call(app, "/count"))[0] == 200
        async with pool.acquire():  # the only connection, busy
            started = time.monotonic()
            answer = await call(app, "/count")
            assert time.monotonic() - started < 5, "it gave up after its acquire timeout"
        assert_unavailable(answer)
        assert (await call(app, "/count"))[0] == 200, "and works again once one is free"
    finally:
        await pool.close()


async def test_an_unreachable_server_answers_503(infrastructure, tmp_path):
    pool = await create_pool(infrastructure.database_url, min_size=1, max_size=2)
    try:
        app = app_reading(pool)
        assert (await call(app, "/count"))[0] == 200
        # The pool's connections are dropped and new ones go where no server listens: as
        # when PostgreSQL is down.
        pool.set_connect_args(host=str(tmp_path))
        await pool.expire_connections()
        assert_unavailable(await call(app, "/count"))
    finally:
        await pool.close()
