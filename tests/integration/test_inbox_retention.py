"""Consumed event ids are forgotten once older than the retention, and not before."""

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from fulfilkit.db import create_pool, migrate
from fulfilkit.retention import prune_inbox
from tests.support import ref

pytestmark = pytest.mark.integration


async def test_only_event_ids_past_the_retention_are_pruned(infrastructure, tmp_path: Path):
    schema = ref("inbox").replace("-", "_")
    pool = await create_pool(infrastructure.database_url)
    try:
        await migrate(pool, schema, tmp_path)
        old = [uuid.uuid4() for _ in range(5)]
        recent = [uuid.uuid4() for _ in range(3)]
        await pool.execute(
            f"INSERT INTO {schema}.inbox (consumer, event_id, received_at)"
            " SELECT 'c', unnest($1::uuid[]), now() - interval '31 days'",
            old,
        )
        await pool.execute(
            f"INSERT INTO {schema}.inbox (consumer, event_id, received_at)"
            " SELECT 'c', unnest($1::uuid[]), now() - interval '29 days'",
            recent,
        )

        assert await prune_inbox(pool, schema, timedelta(days=30), batch=2) == len(old)
        left = {r["event_id"] for r in await pool.fetch(f"SELECT event_id FROM {schema}.inbox")}
        assert left == set(recent)
        index = await pool.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'inbox_by_age'",
            schema,
        )
        assert index is not None and "(received_at)" in index
    finally:
        await pool.close()
