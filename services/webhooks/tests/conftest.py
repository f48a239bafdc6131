"""Settings built in these tests are development settings unless a test says otherwise.

The integration tests' fixtures: a migrated `webhooks` schema, the service's resources and a
real HTTP receiver."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiohttp import web

from fulfilkit.db import create_pool, migrate
from webhooks.app import MIGRATIONS
from webhooks.handoff import Handoff
from webhooks.resources import Resources
from webhooks.sealing import SecretSealer
from webhooks.sender import Sender
from webhooks.settings import WebhookSettings
from webhooks.store import NOTIFY_CHANNEL
from webhooks.wakeup import NotifyListener

# The sender refuses loopback addresses unless allowed: the receiver listens on one.
LOOPBACK = "127.0.0.1,localhost,::1"
MAX_ENDPOINTS = 3


@pytest.fixture(autouse=True)
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")


@pytest.fixture(scope="module")
async def pool(infrastructure) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(infrastructure.database_url, 1, 4)
    try:
        await migrate(pool, "webhooks", MIGRATIONS)
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    settings = WebhookSettings(
        webhook_allowed_hosts=LOOPBACK, webhook_max_endpoints_per_tenant=MAX_ENDPOINTS
    )
    sender = Sender(settings)
    try:
        due = asyncio.Event()
        listener = NotifyListener(settings.database_url, NOTIFY_CHANNEL, due.set)
        sealer = SecretSealer(settings.secret_keys)
        handoff = Handoff(sealer, settings.webhook_lease_seconds)
        yield Resources(settings, sealer, sender, due, listener, handoff)
    finally:
        await sender.close()


@dataclass
class Receiver:
    """Answers every POST with `status` (and `Retry-After`, when set); keeps what it got."""

    url: str = ""
    status: int = 200
    retry_after: str | None = None
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return web.Response(status=self.status, body=b"thanks", headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture
async def tenants(pool: asyncpg.Pool) -> AsyncIterator[Callable[[], UUID]]:
    """Makes tenants of the test's own; their endpoints (deliveries, attempts with them) are
    deleted after it, so no later run on the database meets secrets sealed with a test key."""
    made: list[UUID] = []

    def new() -> UUID:
        made.append(uuid4())
        return made[-1]

    yield new
    await pool.execute("DELETE FROM webhooks.endpoints WHERE tenant_id = ANY($1::uuid[])", made)
