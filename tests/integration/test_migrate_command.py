"""`python -m <service> migrate` as its own step, and services that refuse a schema that does
not match their code: behind it (with MIGRATE_ON_START=false) or newer than it (always)."""

import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

from deploy.local.services import SERVICES, free_ports, python_executable, python_path
from fulfilkit.db import SHARED_SCRIPTS
from tests.support import eventually

pytestmark = pytest.mark.integration

OWN_FIRST_MIGRATION = {
    "gateway": "001_init",
    "orders": "001_init",
    "stock": "001_init",
    "fulfilment": "001_init",
    "webhooks": "001_init",
}
FUTURE = "999_from_a_newer_release"


def environment(service: str, database_url: str, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATABASE_URL": database_url,
        "PYTHONPATH": python_path(service, None),
        **settings,
    }


def run(service: str, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python_executable(), "-m", service, *args],
        env=environment(service, database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def gateway(database_url: str, **settings: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`python -m gateway` (its serving default) on a free port; killed on the way out."""
    [port] = free_ports(1)
    process = subprocess.Popen(
        [python_executable(), "-m", "gateway", "--port", str(port)],
        env=environment("gateway", database_url, **settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def refusal(process: subprocess.Popen[str]) -> str:
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the service started (or hung) instead of refusing") from None
    assert process.returncode != 0, output
    return output


async def applied(database_url: str, schema: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(f"SELECT name FROM {schema}.schema_migrations ORDER BY name")
        return [r["name"] for r in rows]
    finally:
        await conn.close()


async def test_migrate_applies_each_services_migrations_once_and_says_which(database) -> None:
    shared = [name for name, _ in SHARED_SCRIPTS]
    for spec in SERVICES:
        first = run(spec.name, database.url, "migrate")
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith(f"applied to the {spec.name} schema: "), first.stdout
        for name in [*shared, OWN_FIRST_MIGRATION[spec.name]]:
            assert name in first.stdout
        assert set(shared) <= set(await applied(database.url, spec.name))
        again = run(spec.name, database.url, "migrate")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == f"the {spec.name} schema is up to date: nothing to apply"


async def test_a_service_migrated_by_the_command_starts_without_migrating(database) -> None:
    assert run("gateway", database.url, "migrate").returncode == 0
    conn = await asyncpg.connect(database.url)
    try:
        before = await conn.fetchval("SELECT count(*) FROM gateway.schema_migrations")
    finally:
        await conn.close()
    with gateway(database.url, MIGRATE_ON_START="false") as (process, port):
        await eventually(
            lambda: _ready(port, process), bool, timeout=60, what="the gateway answering /ready"
        )
    assert len(await applied(database.url, "gateway")) == before


async def test_a_service_that_may_not_migrate_refuses_a_schema_behind_its_code(database) -> None:
    with gateway(database.url, MIGRATE_ON_START="false") as (process, _):
        output = refusal(process)
    assert "the gateway schema lacks migrations this code needs" in output
    assert "000_messaging" in output and "001_init" in output
    assert "run `python -m gateway migrate` first" in output

    # one migration short: still refused, naming just that one
    assert run("gateway", database.url, "migrate").returncode == 0
    conn = await asyncpg.connect(database.url)
    try:
        await conn.execute("DELETE FROM gateway.schema_migrations WHERE name = '001_init'")
    finally:
        await conn.close()
    with gateway(database.url, MIGRATE_ON_START="false") as (process, _):
        output = refusal(process)
    assert "lacks migrations this code needs (001_init)" in output


@pytest.mark.parametrize("migrate_on_start", ["true", "false"])
async def test_a_schema_newer_than_the_code_is_refused_by_the_service_and_the_command(
    database, migrate_on_start: str
) -> None:
    assert run("gateway", database.url, "migrate").returncode == 0
    conn = await asyncpg.connect(database.url)
    try:
        await conn.execute("INSERT INTO gateway.schema_migrations (name) VALUES ($1)", FUTURE)
    finally:
        await conn.close()
    with gateway(database.url, MIGRATE_ON_START=migrate_on_start) as (process, _):
        output = refusal(process)
    assert "refusing to start: the gateway schema is newer than this code" in output
    assert FUTURE in output

    command = run("gateway", database.url, "migrate")
    assert command.returncode == 1
    assert "refusing to migrate: the gateway schema is newer than this code" in command.stderr
    assert FUTURE in command.stderr
    assert FUTURE in await applied(database.url, "gateway"), "nothing was undone"


def test_migrate_says_when_the_database_cannot_be_reached() -> None:
    [port] = free_ports(1)
    command = run("orders", f"postgresql://postgres@127.0.0.1:{port}/postgres", "migrate")
    assert command.returncode == 3
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}/postgres" in command.stderr
    assert command.stdout == ""


async def _ready(port: int, process: subprocess.Popen[str]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the gateway exited: {process.communicate()[0]}")
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/ready", timeout=1) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False
