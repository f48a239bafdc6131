"""A database of its own, for tests that break a schema on purpose or start a service of
their own (the end-to-end platform of the same session uses the shared one)."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest


@dataclass(frozen=True)
class Database:
    url: str
    name: str


@pytest.fixture
async def database(infrastructure) -> AsyncIterator[Database]:
    name = f"own_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infrastructure.database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        url = urlunsplit(urlsplit(infrastructure.database_url)._replace(path=f"/{name}"))
        yield Database(url, name)
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()
