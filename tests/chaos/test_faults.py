"""The short chaos suite: each fault once, with short outages and a light load, on a Kafka,
PostgreSQL and platform of its own (so that they can be killed). `make chaos` runs the same
faults with the full outages and load."""

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from deploy.local.infra import DEFAULT_STATE_DIR
from tests.chaos.faults import SHORT, Fault
from tests.chaos.report import HEADER, details, passed, table_row
from tests.chaos.run import SHORT_LOAD, Row, Scenario
from tests.chaos.stack import PG_CRASH_SAFE, ChaosStack

pytestmark = pytest.mark.integration

STATE_DIR = DEFAULT_STATE_DIR / "chaos-test"


@pytest.fixture(scope="module")
def stack() -> Iterator[ChaosStack]:
    running = ChaosStack(STATE_DIR, pg_settings=PG_CRASH_SAFE)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def scenario(stack: ChaosStack) -> AsyncIterator[Scenario]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield Scenario(stack, session, SHORT_LOAD)


def _params() -> list:
    return [pytest.param(f, id=name(f)) for f in SHORT]


def name(fault: Fault) -> str:
    return fault.target or fault.kind


def explain(fault: Fault, row: Row) -> str:
    return "\n".join([HEADER, table_row(fault, row), *details(fault, row)])


@pytest.mark.parametrize("fault", _params())
async def test_survived_under_load(scenario: Scenario, fault: Fault) -> None:
    row = await scenario.run(fault)
    print(explain(fault, row))
    assert row.sales > 0, "the load must have created sales"
    assert passed(fault, row), explain(fault, row)
