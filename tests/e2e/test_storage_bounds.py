"""What the platform stores about messages stays bounded: every consuming service's inbox
can be pruned by age (see fulfilkit.retention), and an outbox keeps only what Kafka has not
acknowledged yet."""

import uuid

from fulfilkit import contracts as c
from fulfilkit.db import create_pool
from tests.e2e.stocking import sale_body, stocked_product
from tests.support import Client, eventually, ref


async def test_every_service_schema_has_the_index_the_pruner_needs(platform, infrastructure):
    pool = await create_pool(infrastructure.database_url)
    try:
        schemas = {
            r["schemaname"]
            for r in await pool.fetch(
                "SELECT schemaname FROM pg_indexes WHERE indexname = 'inbox_by_age'"
            )
        }
    finally:
        await pool.close()
    assert {"orders", "stock", "fulfilment", "webhooks"} <= schemas


async def test_published_events_leave_the_outbox(tenant: Client, infrastructure):
    sku, location, _ = await stocked_product(tenant, quantity=5)
    created = await tenant.post("/sales", sale_body(ref("S"), location, (sku, 1)))
    assert created.status == 201 and created.body["status"] == "pending", created
    sale_key = c.sale_key(uuid.UUID(tenant.tenant_id), uuid.UUID(created.body["id"]))
    pool = await create_pool(infrastructure.database_url)
    try:

        async def rows_of_the_sale() -> dict[str, int]:
            counts = {}
            for schema in ("orders", "stock"):
                counts[schema] = await pool.fetchval(
                    f"SELECT count(*) FROM {schema}.outbox WHERE key = $1", sale_key
                )
            return counts

        # its sale.created, stock.reserved and sale.status_changed have all been consumed
        # (the answer says pending), so they were published: none may be left behind
        await eventually(
            rows_of_the_sale,
            lambda n: not any(n.values()),
            what="the sale's events to leave the outboxes",
        )
    finally:
        await pool.close()
