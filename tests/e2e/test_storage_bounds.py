"""Every consuming service's inbox can be pruned by age (see fulfilkit.retention)."""

import pytest

from fulfilkit.db import create_pool

pytestmark = pytest.mark.integration


async def test_every_service_schema_has_the_index_the_pruner_needs(platform, infrastructure):
    pool = await create_pool(infrastructure.database_url)
    try:
        schemas = {r["schemaname"] for r in await pool.fetch(
            "SELECT schemaname FROM pg_indexes WHERE indexname = 'inbox_by_age'")}
    finally:
        await pool.close()
    assert {"orders", "stock", "fulfilment", "webhooks"} <= schemas
