"""Helpers for the webhook tests (no tests here): a scriptable receiver, endpoint set-up and
cheap ways to make events.

`Hook` is a real local aiohttp server. Each request is answered by `respond` (200 when it is
None), which sees everything received so far, so a test can fail one event's first attempt,
hang, or answer 410, while the rest of the traffic flows.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiohttp import web

from tests.support import Client, eventually, ref

T = TypeVar("T")
Respond = Callable[["Arrival", "Hook"], Awaitable[web.StreamResponse] | web.StreamResponse]


@dataclass
class Arrival:
    """One request as the receiver got it: headers, raw body, wall-clock time, client port."""

    headers: dict[str, str]
    body: bytes
    at: float
    peer_port: int

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)

    @property
    def type(self) -> str:
        return self.json["type"]

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Hook:
    respond: Respond | None = None
    received: list[Arrival] = field(default_factory=list)
    most_open: int = 0  # the most requests it held open at once
    port: int = 0
    _open: dict[int, web.Request] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        arrival = Arrival(headers, await request.read(), time.time(), peer[1] if peer else 0)
        self.received.append(arrival)
        self._open[id(request)] = request
        self.most_open = max(self.most_open, self.open_requests)
        try:
            if self.respond is None:
                return web.Response(text="ok")
            answer = self.respond(arrival, self)
            return await answer if asyncio.iscoroutine(answer) else answer  # type: ignore[return-value]
        finally:
            self._open.pop(id(request), None)

    @property
    def open_requests(self) -> int:
        """Requests not answered yet whose client is still connected."""
        return sum(
            1
            for r in self._open.values()
            if r.transport is not None and not r.transport.is_closing()
        )

    async def hang(self) -> web.StreamResponse:
        """Never answer (until the hook stops): the sender's timeout is the only way out."""
        await self._released.wait()
        return web.Response(status=503)

    async def start(self, port: int | None = None) -> "Hook":
        """Listen on `port` (default: the one used before, or any free one)."""
        self._released.clear()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port if port is not None else self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Close the port: connections are refused until `start()` again."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def of_type(self, *types: str) -> list[Arrival]:
        return [a for a in self.received if a.type in types]

    def unique_ids(self) -> set[str]:
        return {a.webhook_id for a in self.received}


def polled(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """`read` as a probe for `eventually`."""

    async def probe() -> T:
        return read()

    return probe


async def started(respond: Respond | None = None) -> Hook:
    return await Hook(respond).start()


async def register(client: Client, url: str, **fields: Any) -> dict[str, Any]:
    """A new endpoint (201 expected); its body carries the secret."""
    answer = await client.post("/webhooks/endpoints", {"url": url, **fields})
    assert answer.status == 201, answer
    return answer.body


async def deliveries(client: Client, endpoint_id: str, **filters: Any) -> list[dict[str, Any]]:
    answer = await client.get(f"/webhooks/endpoints/{endpoint_id}/deliveries", **filters)
    assert answer.status == 200, answer
    return answer.body["data"]


async def received_count(
    hook: Hook, count: int, timeout: float = 20.0, what: str = "deliveries"
) -> None:
    async def probe() -> int:
        return len(hook.unique_ids())

    await eventually(probe, lambda n: n >= count, timeout=timeout, what=what)


@dataclass
class StockRecord:
    """A product, a location and one stock record: every level change is a `stock.changed`."""

    client: Client
    sku: str
    location: str
    id: str

    @classmethod
    async def create(cls, client: Client, quantity: int = 100) -> "StockRecord":
        sku, location = ref("SKU"), ref("wh")
        assert (await client.post("/products", {"sku": sku, "name": "Mug"})).status == 201
        assert (
            await client.post("/locations", {"location_id": location, "name": "W"})
        ).status == 201
        record = await client.post(
            "/stock/stock-records", {"sku": sku, "location_id": location, "quantity": quantity}
        )
        assert record.status == 201, record
        return cls(client, sku, location, record.body["id"])

    @property
    def subject(self) -> str:
        return f"stock-record/{self.id}"

    async def restock(self, quantity: int = 1) -> None:
        answer = await self.client.post(
            "/stock/stock-level-updates",
            {
                "sku": self.sku,
                "location_id": self.location,
                "quantity": quantity,
                "update_type": "restock",
            },
        )
        assert answer.status in (200, 201), answer
