"""What the gateway's integration tests drive: the gateway under a real uvicorn server in the
test's event loop, and fake services that are real aiohttp servers recording what they got.

Import it as `services.gateway.tests.harness` (the repo root is on pytest's pythonpath).
"""

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import uvicorn
from aiohttp import web
from multidict import CIMultiDictProxy

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.support import ref

# strong enough for production settings: the harness runs the gateway as deployed
ADMIN_TOKEN = "gateway-tests-admin-token-" + "x7Qp2Lr9Vb4Nc8Md"
INTERNAL_TOKEN = "gateway-tests-internal-token-" + "Kf3Hs6Wj1Ty5Ug0Z"
SERVICES = ("orders", "stock", "fulfilment", "webhooks")

Responder = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    method: str
    path: str
    raw_path: str
    query: str
    headers: CIMultiDictProxy[str]
    body: bytes


async def echo(request: web.Request) -> web.StreamResponse:
    return web.json_response({"echo": request.path}, status=200)


@dataclass
class FakeService:
    """Stands in for one upstream service: records every request and answers with `respond`."""

    name: str
    respond: Responder = echo
    openapi: dict[str, Any] | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = listening_socket()
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def reset(self) -> None:
        self.respond, self.openapi = echo, None
        self.received.clear()

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/openapi.json" and self.openapi is not None:
            return web.json_response(self.openapi)
        self.received.append(
            Received(
                request.method,
                request.path,
                request.raw_path,
                request.query_string,
                request.headers,
                await request.read(),
            )
        )
        return await self.respond(request)


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def closed_port_url() -> str:
    """A URL where nothing listens, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {what}")
        await asyncio.sleep(0.01)


Answer = tuple[int, Any, CIMultiDictProxy[str]]


@dataclass
class RunningGateway:
    url: str
    settings: GatewaySettings
    http: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """(status, body parsed when JSON, headers)."""
        all_headers = {"Authorization": f"Bearer {key}"} if key else {}
        all_headers.update(headers or {})
        async with self.http.request(
            method, self.url + path, json=json, headers=all_headers
        ) as response:
            body: Any = await response.read()
            if body and response.content_type.endswith("json"):
                body = await response.json(content_type=None)
            return response.status, body, response.headers

    async def new_tenant(self) -> dict[str, Any]:
        status, body, _ = await self.call(
            "POST", "/api/v1/admin/tenants", key=ADMIN_TOKEN, json={"name": ref("gw-tenant")}
        )
        assert status == 201, body
        return body

    async def new_key(self, tenant_id: str, scopes: list[str]) -> dict[str, Any]:
        status, body, _ = await self.call(
            "POST",
            f"/api/v1/admin/tenants/{tenant_id}/keys",
            key=ADMIN_TOKEN,
            json={"scopes": scopes},
        )
        assert status == 201, body
        return body


StartGateway = Callable[..., Awaitable[RunningGateway]]


class Gateways:
    """Starts gateways in this event loop, each with its own settings, and stops them all."""

    def __init__(self, database_url: str, fakes: dict[str, FakeService]) -> None:
        self._database_url = database_url
        self._fakes = fakes
        self._running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
        self._http = aiohttp.ClientSession()

    async def start(self, **overrides: Any) -> RunningGateway:
        settings = GatewaySettings(
            **{
                "environment": "production",
                "database_url": self._database_url,
                "admin_token": ADMIN_TOKEN,
                "internal_token": INTERNAL_TOKEN,
                **{f"{name}_url": fake.url for name, fake in self._fakes.items()},
                **overrides,
            }
        )
        server = uvicorn.Server(uvicorn.Config(create_app(settings), log_config=None))
        sock = listening_socket()
        task = asyncio.create_task(server.serve(sockets=[sock]))
        self._running.append((server, task))
        await wait_until(lambda: server.started or task.done(), "gateway started")
        assert server.started, "the gateway failed to start"
        return RunningGateway(f"http://127.0.0.1:{sock.getsockname()[1]}", settings, self._http)

    async def stop_all(self) -> None:
        await self._http.close()
        for server, _ in self._running:
            server.should_exit = True
        for _, task in self._running:
            with contextlib.suppress(SystemExit):
                await task
