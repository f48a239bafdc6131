"""Helpers for tests against the running platform: a client, a webhook receiver, polling."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

T = TypeVar("T")


def ref(prefix: str) -> str:
    """A unique id, so tests never collide on a shared database."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `probe` until `until(result)` holds; fail with the last result at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last: {result!r}")
        await asyncio.sleep(interval)


@dataclass
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def problem_code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class Client:
    """Talks to the gateway as one API key."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        key: str | None,
        tenant_id: str | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.key = key
        self.tenant_id = tenant_id

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> Answer:
        all_headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        all_headers.update(headers or {})
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method,
            f"{self.base_url}/api/v1{path}",
            json=json,
            data=data,
            headers=all_headers,
            params=params or None,
        ) as response:
            raw = await response.read()
            try:
                body: Any = await response.json(content_type=None) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            return Answer(response.status, body, CIMultiDict(response.headers))

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, **params)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> Answer:
        return await self.call("POST", path, json=json, **kwargs)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real local HTTP server standing in for a customer's webhook endpoint."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok")

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
