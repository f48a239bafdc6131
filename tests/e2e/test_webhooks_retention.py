"""Retention: finished deliveries and their attempt logs past the age limit are pruned; pending
ones and recent ones stay. The service's pruner runs `webhooks.retention.prune` on a timer;
here it is called directly against the real database, with rows aged by hand."""

import uuid
from datetime import timedelta

import asyncpg
from aiohttp import web

from fulfilkit.db import create_pool
from tests.e2e.webhook_tools import (
    Arrival,
    Hook,
    StockRecord,
    deliveries,
    register,
    started,
)
from tests.support import Client, eventually
from webhooks.retention import prune

RETENTION = timedelta(days=30)


async def test_old_finished_deliveries_and_their_attempts_are_pruned(
    tenant: Client,
    infrastructure,
):
    def respond(arrival: Arrival, _: Hook) -> web.Response:
        opening = arrival.json["data"]["quantity"] == 1  # the record's first event
        return web.Response(status=500 if opening else 200)

    hook = await started(respond)
    pool = await create_pool(infrastructure.database_url)
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        record = await StockRecord.create(tenant, quantity=1)  # fails: 4 attempts of 500
        for _ in range(3):
            await record.restock()

        async def finished() -> list[dict]:
            return [d for d in await deliveries(tenant, endpoint["id"]) if d["status"] != "pending"]

        done = await eventually(finished, lambda d: len(d) == 4, what="four finished deliveries")
        failed = next(d for d in done if d["status"] == "failed")
        old_success, recent_success = [d for d in done if d["status"] == "succeeded"][:2]
        aged = [uuid.UUID(failed["id"]), uuid.UUID(old_success["id"])]
        await pool.execute(
            "UPDATE webhooks.deliveries SET completed_at = now() - interval '31 days'"
            " WHERE id = ANY($1::uuid[])",
            aged,
        )
        async with pool.acquire() as conn:
            attempts_before = await _attempts(conn, aged)
        assert attempts_before == 5  # four for the failed one, one for the success

        assert await prune(pool, RETENTION, batch=1) >= 2
        remaining = {d["id"] for d in await deliveries(tenant, endpoint["id"])}
        assert failed["id"] not in remaining and old_success["id"] not in remaining
        assert recent_success["id"] in remaining
        async with pool.acquire() as conn:
            assert await _attempts(conn, aged) == 0
        gone = await tenant.get(f"/webhooks/deliveries/{failed['id']}")
        assert gone.status == 404

        # A pending delivery is never pruned, however old.
        pending_id = uuid.UUID(
            next(d for d in done if d["id"] not in {failed["id"], old_success["id"]})["id"]
        )
        await pool.execute(
            "UPDATE webhooks.deliveries SET status = 'pending', completed_at = NULL,"
            " created_at = now() - interval '90 days', next_attempt_at = NULL WHERE id = $1",
            pending_id,
        )
        await prune(pool, RETENTION)
        assert (await tenant.get(f"/webhooks/deliveries/{pending_id}")).status == 200
    finally:
        await pool.close()
        await hook.stop()


async def _attempts(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM webhooks.attempts WHERE delivery_id = ANY($1::uuid[])", ids
    )
