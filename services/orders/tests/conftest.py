"""A pool on a database of its own with the orders schema migrated, for the integration tests.

Its own database, not the shared one: a running orders service (the end-to-end suite's,
in the same session) would publish and delete the outbox rows these tests look at.
"""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from fulfilkit.db import create_pool, migrate

MIGRATIONS = Path(__file__).resolve().parents[1] / "orders" / "migrations"


def _on_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def pool(infrastructure) -> AsyncIterator[asyncpg.Pool]:
    name = f"orders_tests_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infrastructure.database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        pool = await create_pool(_on_database(infrastructure.database_url, name))
        try:
            await migrate(pool, "orders", MIGRATIONS)
            yield pool
        finally:
            await pool.close()
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def tenant(pool: asyncpg.Pool) -> uuid.UUID:
    """A new tenant whose catalogue holds the SKU the tests' sales order, "A" (as stock's
    `product.created` would have put it in orders' copy)."""
    tenant = uuid.uuid4()
    await pool.execute("INSERT INTO orders.catalogue (tenant_id, sku) VALUES ($1, 'A')", tenant)
    return tenant
