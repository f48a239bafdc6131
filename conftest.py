"""Session fixtures: the real Kafka broker and PostgreSQL server every integration test uses.

`KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` win when both are set (as `make test` sets
them); otherwise the tests start their own through `tests.infra`.

Settings built in tests are development settings unless a test says otherwise (the
fail-closed checks of production have their own tests, which clear ENVIRONMENT).
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.infra import provide_infrastructure

os.environ.setdefault("ENVIRONMENT", "development")


@dataclass(frozen=True)
class Infrastructure:
    bootstrap_servers: str
    database_url: str


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide_infrastructure() as (bootstrap, dsn):
        yield Infrastructure(bootstrap, dsn)
