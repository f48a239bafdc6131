"""Webhook receivers on fixed local ports that can be stopped and started again, keeping
what they received."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from aiohttp import web

from deploy.local.services import free_ports


@dataclass(frozen=True)
class Delivery:
    """One request as received: its `webhook-id`, event type, sale, status and version."""

    webhook_id: str
    type: str
    sale_id: str
    status: str
    version: int
    body: bytes


@dataclass
class StoppableReceiver:
    name: str
    port: int = 0
    received: list[Delivery] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{self.name}"

    @property
    def up(self) -> bool:
        return self._runner is not None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event = orjson.loads(body)
        data = event.get("data") or {}
        self.received.append(
            Delivery(
                request.headers.get("webhook-id", ""),
                event.get("type", ""),
                str(data.get("sale_id", "")),
                str(data.get("status", "")),
                int(data.get("version", 0)),
                body,
            )
        )
        return web.Response(text="ok")

    async def start(self) -> StoppableReceiver:
        if not self.port:
            [self.port] = free_ports(1)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        return self

    async def stop(self) -> None:
        """Close the port: deliveries then fail with a refused connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def unique(self) -> dict[str, Delivery]:
        return {d.webhook_id: d for d in self.received}
