"""Service-to-service calls must not reuse a connection the server is about to close."""

import asyncio

import uvicorn

from fulfilkit.http.client import internal_session


def test_client_lets_idle_connections_go_before_uvicorn_does() -> None:
    async def keepalive() -> float:
        session = internal_session(10, 5.0)
        try:
            return session.connector._keepalive_timeout  # type: ignore[union-attr]
        finally:
            await session.close()

    server_keepalive = uvicorn.Config(app=None).timeout_keep_alive  # type: ignore[arg-type]
    assert asyncio.run(keepalive()) < server_keepalive
