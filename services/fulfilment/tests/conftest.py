"""Fixtures of fulfilment's integration tests: a migrated database of their own, and a small
real HTTP server standing in for orders' internal API.

The database is a fresh one on the test server, not the platform's: a running fulfilment
relay would otherwise publish (and delete) the outbox rows these tests write and read.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from fulfilkit.db import create_pool, migrate
from fulfilkit.http.internal import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, TENANT_HEADER
from fulfilment.orders_client import OrdersClient

MIGRATIONS = Path(__file__).resolve().parents[1] / "fulfilment" / "migrations"
TOKEN = "fulfilment-test-token"


def database_url(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
async def pool(infrastructure) -> AsyncIterator[asyncpg.Pool]:
    name = f"fulfilment_tests_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infrastructure.database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    pool = await create_pool(database_url(infrastructure.database_url, name))
    try:
        await migrate(pool, "fulfilment", MIGRATIONS)
        yield pool
    finally:
        await pool.close()
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


@dataclass
class Sale:
    id: uuid.UUID
    sale_id: str
    status: str
    location_id: str | None = "wh-1"
    channel: str = "web"
    bulky: bool = False
    location_name: str | None = None  # in the reservation, as stock publishes it
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # the whole reservation, for a split sale (else one line at `location_id`)
    reservation: dict[str, Any] | None = None
    shipped_parts: set[str] = field(default_factory=set)  # the locations shipped

    def snapshot(self) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        lines = [{"sku": "A", "quantity": 1}]
        return {
            "id": str(self.id),
            "sale_id": self.sale_id,
            "status": self.status,
            "version": 2,
            "shop": {"channel": self.channel, "shop_name": "test"},
            "location_id": self.location_id,
            "lines": lines,
            "reservation": self.reservation
            or {
                "lines": [
                    {**lines[0], "stock_record_id": str(uuid.uuid4()), "is_bulky": self.bulky}
                ],
                **({"location": {"name": self.location_name}} if self.location_name else {}),
            },
            "created_at": self.created_at.isoformat(),
            "updated_at": now,
        }

    def locations(self) -> set[str]:
        """Where the sale ships from: its reservation's locations."""
        reservation = self.reservation or {}
        primary = reservation.get("location_id") or self.location_id
        return {primary} | {p["location_id"] for p in reservation.get("other_locations", [])}


@dataclass
class FakeOrders:
    """orders' claim and ship, as orders answers them, over the sales a test gives it.
    `answer_status` makes every request fail with that status instead; `answer_body` makes
    every answer a 200 with that body."""

    url: str = ""
    sales: dict[tuple[uuid.UUID, str], Sale] = field(default_factory=dict)
    requests: list[tuple[str, uuid.UUID, list[str]]] = field(default_factory=list)
    # the parts each shipment asked for, (sale_id, location_id)
    parts_asked: list[list[tuple[str, str]]] = field(default_factory=list)
    answer_status: int | None = None
    answer_body: bytes | None = None

    def add(self, tenant: uuid.UUID, status: str = "pending", **kwargs: Any) -> Sale:
        sale = Sale(uuid.uuid4(), f"S-{uuid.uuid4().hex[:10]}", status, **kwargs)
        self.sales[(tenant, sale.sale_id)] = sale
        return sale

    def client(self, session: aiohttp.ClientSession) -> OrdersClient:
        return OrdersClient(session, self.url, TOKEN)

    async def handle(self, request: web.Request) -> web.Response:
        assert request.headers[INTERNAL_TOKEN_HEADER] == TOKEN
        assert request.headers[ACTOR_HEADER]
        tenant = uuid.UUID(request.headers[TENANT_HEADER])
        body = await request.json()
        parts = [(p["sale_id"], p["location_id"]) for p in body.get("parts", [])]
        sale_ids = body["sale_ids"] if "sale_ids" in body else [s for s, _ in parts]
        self.requests.append((request.path, tenant, sale_ids))
        if parts:
            self.parts_asked.append(parts)
        if self.answer_status is not None:
            return web.json_response({"detail": "Refused."}, status=self.answer_status)
        if self.answer_body is not None:
            return web.Response(body=self.answer_body, content_type="application/json")
        if request.path == "/internal/sales/claim":
            return web.json_response(self.claim(tenant, sale_ids))
        return web.json_response(self.ship(tenant, parts))

    def claim(self, tenant: uuid.UUID, sale_ids: list[str]) -> dict[str, Any]:
        claimed, errors = [], []
        for sale_id in sale_ids:
            sale = self.sales.get((tenant, sale_id))
            if sale is None:
                errors.append(
                    {
                        "sale_id": sale_id,
                        "code": "not_found",
                        "detail": "No such sale.",
                        "status": None,
                    }
                )
            elif sale.status != "pending":
                errors.append(
                    {
                        "sale_id": sale_id,
                        "code": "invalid_status",
                        "status": sale.status,
                        "detail": f"Only pending sales can be shipped; this one is {sale.status}.",
                    }
                )
            else:
                sale.status = "in_fulfillment"
                claimed.append(sale.snapshot())
        return {"claimed": claimed, "errors": errors}

    def ship(self, tenant: uuid.UUID, parts: list[tuple[str, str]]) -> dict[str, Any]:
        shipped, errors = [], []
        for sale_id, where in parts:
            sale = self.sales.get((tenant, sale_id))
            if sale is None or sale.status not in ("in_fulfillment", "shipped", "delivered"):
                status = None if sale is None else sale.status
                errors.append(
                    {
                        "sale_id": sale_id,
                        "location_id": where,
                        "code": "conflict" if sale else "not_found",
                        "sale_status": status,
                        "detail": f"The sale is {status} and cannot ship.",
                    }
                )
            else:
                if sale.status == "in_fulfillment":
                    sale.shipped_parts.add(where)
                    if sale.shipped_parts >= sale.locations():
                        sale.status = "shipped"
                shipped.append(sale_id)
        return {"shipped": list(dict.fromkeys(shipped)), "errors": errors}


@pytest.fixture
async def orders() -> AsyncIterator[FakeOrders]:
    fake = FakeOrders()
    app = web.Application()
    app.router.add_post("/internal/sales/claim", fake.handle)
    app.router.add_post("/internal/sales/ship", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session
