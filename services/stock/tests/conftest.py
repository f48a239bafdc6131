"""A database of the stock tests' own, migrated once per session: a platform running on the
same server (the end-to-end suite's) neither publishes their outbox rows nor leads their
backorder worker. Each test uses its own tenant, so tests never see each other's rows."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from fulfilkit.db import create_pool, migrate
from stock.domain import StockRecord
from stock.usecases import catalogue, levels

MIGRATIONS = Path(__file__).resolve().parents[1] / "stock" / "migrations"


def with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
async def stock_dsn(infrastructure) -> AsyncIterator[str]:
    name = f"stock_tests_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(infrastructure.database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield with_database(infrastructure.database_url, name)
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def pool(stock_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(stock_dsn, application_name="stock-tests")
    await migrate(pool, "stock", MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()


Stock = Callable[..., Awaitable[StockRecord]]


@pytest.fixture
def stocked(pool: asyncpg.Pool, tenant: uuid.UUID) -> Stock:
    """Makes a record of `quantity` units of `sku` at `location`, creating the product and
    the location when the tenant has none by that name yet."""

    async def make(
        sku: str = "A", quantity: int = 10, location: str = "wh-1", **product: object
    ) -> StockRecord:
        async with pool.acquire() as conn:
            if await conn.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM stock.products WHERE tenant_id = $1"
                " AND sku = $2)",
                tenant,
                sku,
            ):
                await catalogue.create_product(pool, tenant, sku, f"product {sku}", **product)  # type: ignore[arg-type]
            if await conn.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM stock.locations WHERE tenant_id = $1"
                " AND location_id = $2)",
                tenant,
                location,
            ):
                await catalogue.create_location(pool, tenant, location, f"location {location}")
        return await levels.create_stock_record(pool, tenant, location, sku, quantity, "test")

    return make
