from collections.abc import AsyncIterator

import asyncpg
import pytest

from fulfilkit.db import create_pool, migrate
from gateway.app import MIGRATIONS
from services.gateway.tests.harness import (
    SERVICES,
    FakeService,
    Gateways,
    RunningGateway,
    StartGateway,
)


@pytest.fixture(scope="session")
async def fake_services() -> AsyncIterator[dict[str, FakeService]]:
    fakes = {name: FakeService(name) for name in SERVICES}
    for fake in fakes.values():
        await fake.start()
    yield fakes
    for fake in fakes.values():
        await fake.stop()


@pytest.fixture
def fakes(fake_services: dict[str, FakeService]) -> dict[str, FakeService]:
    """The fake services, reset to their default behaviour for this test."""
    for fake in fake_services.values():
        fake.reset()
    return fake_services


@pytest.fixture
async def start_gateway(
    infrastructure, fakes: dict[str, FakeService]
) -> AsyncIterator[StartGateway]:
    gateways = Gateways(infrastructure.database_url, fakes)
    yield gateways.start
    await gateways.stop_all()


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> RunningGateway:
    return await start_gateway()


@pytest.fixture
async def pool(infrastructure) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the gateway's schema, migrated; tests keep apart by their own tenants."""
    pool = await create_pool(infrastructure.database_url, max_size=4)
    await migrate(pool, "gateway", MIGRATIONS)
    yield pool
    await pool.close()
