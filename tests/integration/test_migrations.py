"""The migration runner applies each script once, in order, even when replicas race."""

import asyncio
from pathlib import Path

import pytest

from fulfilkit.db import create_pool, migrate
from tests.support import ref

pytestmark = pytest.mark.integration

SHARED = [
    "000_messaging",
    "000_messaging_inbox_by_age",
    "000_messaging_outbox_delete_published",
    "000_messaging_lean_indexes",
    "000_messaging_outbox_parked",
    "000_messaging_idempotency",
    "000_messaging_dead_letters",
    "000_messaging_outbox_trace_context",
    "000_messaging_inbox_dead_lettered",
]


async def test_migrations_apply_in_order_once_even_concurrently(infrastructure, tmp_path: Path):
    schema = ref("mig").replace("-", "_")
    (tmp_path / "001_things.sql").write_text(f"CREATE TABLE {schema}.things (id int);")
    (tmp_path / "002_more.sql").write_text(f"ALTER TABLE {schema}.things ADD name text;")
    pool = await create_pool(infrastructure.database_url)
    try:
        results = await asyncio.gather(*(migrate(pool, schema, tmp_path) for _ in range(4)))
        assert sorted(results, key=len)[-1] == [*SHARED, "001_things", "002_more"]
        assert sum(len(r) for r in results) == len(SHARED) + 2, "every script ran exactly once"
        assert await migrate(pool, schema, tmp_path) == []
        columns = await pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'things' ORDER BY ordinal_position",
            schema,
        )
        assert [c["column_name"] for c in columns] == ["id", "name"]
    finally:
        await pool.close()


async def test_a_failing_script_applies_nothing_and_is_retried(infrastructure, tmp_path: Path):
    schema = ref("mig").replace("-", "_")
    (tmp_path / "001_ok.sql").write_text(f"CREATE TABLE {schema}.ok (id int);")
    (tmp_path / "002_broken.sql").write_text("THIS IS NOT SQL;")
    pool = await create_pool(infrastructure.database_url)
    try:
        with pytest.raises(Exception, match="syntax"):
            await migrate(pool, schema, tmp_path)
        (tmp_path / "002_broken.sql").write_text(f"CREATE TABLE {schema}.fixed (id int);")
        assert await migrate(pool, schema, tmp_path) == [*SHARED, "001_ok", "002_broken"]
    finally:
        await pool.close()
