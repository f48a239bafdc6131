"""Each service connects as its own PostgreSQL role, which owns its schema and can touch no
other."""

import asyncpg
import pytest

from deploy.local.services import SERVICES, Platform

NAMES = [spec.name for spec in SERVICES]


@pytest.mark.parametrize("name", NAMES)
async def test_a_services_role_uses_its_own_schema_and_cannot_read_another(
    platform: Platform, name: str
) -> None:
    conn = await asyncpg.connect(platform.database_urls[name])
    try:
        assert await conn.fetchval("SELECT current_user") == f"fulfil_{name}"
        assert await conn.fetchval(f"SELECT count(*) FROM {name}.schema_migrations") > 0
        for other in NAMES:
            if other == name:
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {other}.schema_migrations LIMIT 1")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"DROP TABLE {other}.schema_migrations")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE SCHEMA fulfil_intruder")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.fulfil_intruder (x int)")
    finally:
        await conn.close()


async def test_every_service_connects_as_its_role(platform: Platform, infrastructure) -> None:
    conn = await asyncpg.connect(infrastructure.database_url)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT application_name, usename FROM pg_stat_activity"
            " WHERE application_name = ANY($1::text[])",
            NAMES,
        )
        owners = await conn.fetch(
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace"
            " WHERE nspname = ANY($1::text[])",
            NAMES,
        )
    finally:
        await conn.close()
    assert {(r["application_name"], r["usename"]) for r in rows} == {
        (name, f"fulfil_{name}") for name in NAMES
    }
    assert {r["nspname"]: r["owner"] for r in owners} == {name: f"fulfil_{name}" for name in NAMES}
    for name in NAMES:
        assert platform[name].env["DATABASE_URL"] == platform.database_urls[name]
