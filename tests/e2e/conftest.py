"""The whole platform as real processes on the real broker and database, once per session."""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from deploy.local.services import SERVICES, Platform, free_ports
from fulfilkit.http.client import KEEPALIVE_SECONDS
from gateway.domain import SCOPES
from tests.support import Client, ref

LOG_DIR = Path(__file__).resolve().parents[2] / ".local" / "test-logs"

TEST_SETTINGS = {
    "RATE_LIMIT_PER_SECOND": "100000",
    "RATE_LIMIT_BURST": "100000",
    # every test client is 127.0.0.1: per-address limits are tested in services/gateway/tests
    "UNAUTHENTICATED_RATE_LIMIT_PER_SECOND": "100000",
    "UNAUTHENTICATED_RATE_LIMIT_BURST": "100000",
    "ADMIN_FAILURES_PER_MINUTE": "6000000",
    "ADMIN_FAILURES_BURST": "100000",
    "OUTBOX_POLL_INTERVAL_SECONDS": "0.5",
    "WEBHOOK_POLL_INTERVAL_SECONDS": "0.1",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": "0.2,0.4,0.8",
    "WEBHOOK_TIMEOUT_SECONDS": "5",
    "WEBHOOK_LEASE_SECONDS": "12",
    # the deployment with the most moving parts (a delivery process sharing the caps):
    # crashes, fairness and database faults are tested on it; the services' own tests cover
    # the service's process alone, the default
    "WEBHOOK_DELIVERY_PROCESSES": "1",
    "CONSUMER_MAX_ATTEMPTS": "2",
    "SHIPPING_PROVIDER_RULES": '{"channel:freight": "fulfil-freight"}',
}


@contextmanager
def running_platform(infrastructure, log_dir: Path = LOG_DIR) -> Iterator[Platform]:
    """The five services on free ports with the test settings, stopped on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip([s.name for s in SERVICES], free_ports(len(SERVICES)), strict=True))
    with Platform(
        database_url=infrastructure.database_url,
        bootstrap_servers=infrastructure.bootstrap_servers,
        log_dir=log_dir,
        ports=ports,
        extra_env=TEST_SETTINGS,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def platform(infrastructure) -> Iterator[Platform]:
    with running_platform(infrastructure) as running:
        yield running


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # lets an idle connection go before uvicorn closes it, or a request may be written into
    # a closing connection ("Server disconnected", "Can not write request body")
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        yield session


async def new_tenant(platform: Platform, http: aiohttp.ClientSession) -> Client:
    admin = Client(http, platform.gateway_url, platform.admin_token)
    # every scope, `admin` included: the suite reads /stock/integrity with the tenant's key
    answer = await admin.post("/admin/tenants", {"name": ref("tenant"), "scopes": list(SCOPES)})
    assert answer.status == 201, answer
    return Client(http, platform.gateway_url, answer.body["api_key"], answer.body["tenant"]["id"])


@pytest.fixture
async def tenant(platform: Platform, http: aiohttp.ClientSession) -> Client:
    return await new_tenant(platform, http)


@pytest.fixture
async def other_tenant(platform: Platform, http: aiohttp.ClientSession) -> Client:
    return await new_tenant(platform, http)
