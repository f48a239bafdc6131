"""Session fixtures: the real Kafka broker and PostgreSQL server every integration test uses.

`KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` win when both are set (as `make test` sets
them); otherwise the tests start their own through `tests.infra`.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.infra import provide_infrastructure


@dataclass(frozen=True)
class Infrastructure:
    bootstrap_servers: str
    database_url: str


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide_infrastructure() as (bootstrap, dsn):
        yield Infrastructure(bootstrap, dsn)
