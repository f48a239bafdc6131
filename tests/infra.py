"""Kafka and PostgreSQL for a test session.

In order of preference: KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when both are set (as
`make test` sets them); testcontainers when a Docker engine answers; else the local launcher
(`deploy.local`) in .local/test, wiped first and stopped afterwards. TEST_INFRA=local skips the
Docker check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from deploy.local.infra import infrastructure_for_tests

KAFKA_IMAGE = "confluentinc/cp-kafka:8.1.0"
POSTGRES_IMAGE = "postgres:18-alpine"


def docker_available(timeout: float = 2.0) -> bool:
    if os.environ.get("TEST_INFRA") == "local":
        return False
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextmanager
def containers(
    bootstrap_servers: str | None, database_url: str | None
) -> Iterator[tuple[str, str]]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    with ExitStack() as stack:
        if not bootstrap_servers:
            kafka = (
                KafkaContainer(KAFKA_IMAGE)
                .with_kraft()
                .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
                .with_env("KAFKA_NUM_PARTITIONS", "8")
            )
            kafka.start(timeout=120)
            stack.callback(kafka.stop)
            bootstrap_servers = kafka.get_bootstrap_server()
        if not database_url:
            postgres = PostgresContainer(POSTGRES_IMAGE, driver=None).with_command(
                "postgres -c max_connections=300 -c fsync=off -c synchronous_commit=off"
            )
            database_url = stack.enter_context(postgres).get_connection_url()
        yield bootstrap_servers, database_url


@contextmanager
def provide_infrastructure() -> Iterator[tuple[str, str]]:
    """Yield (bootstrap_servers, database_url) for real, running Kafka and PostgreSQL."""
    bootstrap_servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
    database_url = os.environ.get("DATABASE_URL") or None
    if bootstrap_servers and database_url:
        yield bootstrap_servers, database_url
    elif docker_available():
        with containers(bootstrap_servers, database_url) as pair:
            yield pair
    else:
        with infrastructure_for_tests() as pair:
            yield pair
