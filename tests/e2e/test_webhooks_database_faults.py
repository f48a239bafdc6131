"""The dispatchers outlive a lost database connection: their LISTEN connections and their
pools' connections are terminated by the server, and deliveries go on, woken by LISTEN again.
There are two dispatchers, each with its own LISTEN: the service's and that of its one
delivery process (`WEBHOOK_DELIVERY_PROCESSES=1` in the end-to-end platform)."""

import asyncpg

from tests.e2e.webhook_tools import StockRecord, polled, received_count, register, started
from tests.support import Client, eventually

LISTEN_APP = "webhooks-listen"
DISPATCH_APPS = (LISTEN_APP, "webhooks-dispatch")
DISPATCHERS = 2  # the service's own and its one delivery process's


async def _backends(conn: asyncpg.Connection, names: tuple[str, ...]) -> list[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = ANY($1::text[])", list(names)
    )
    return [r["pid"] for r in rows]


async def test_deliveries_continue_after_the_dispatchers_connections_are_terminated(
    tenant: Client, infrastructure
):
    hook = await started()
    conn = await asyncpg.connect(infrastructure.database_url)
    try:
        endpoint = await register(tenant, hook.url, event_types=["stock.changed"])
        record = await StockRecord.create(tenant, quantity=1)
        await received_count(hook, 1)

        async def listening() -> list[int]:
            return await _backends(conn, (LISTEN_APP,))

        before = set(
            await eventually(
                listening,
                lambda pids: len(pids) == DISPATCHERS,
                what="one LISTEN connection of each dispatcher",
            )
        )
        victims = await _backends(conn, DISPATCH_APPS)
        assert before <= set(victims)
        for pid in victims:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)

        # Deliveries keep flowing, and LISTEN is back on a new connection.
        for _ in range(3):
            await record.restock(1)
        await received_count(hook, 4, timeout=30, what="deliveries after the fault")
        after = set(
            await eventually(
                listening,
                lambda pids: len(pids) == DISPATCHERS and not set(pids) & before,
                timeout=30,
                what="new LISTEN connections",
            )
        )

        # And a second fault is survived the same way.
        for pid in after:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        await record.restock(1)
        await received_count(hook, 5, timeout=30, what="deliveries after a second fault")
        await eventually(
            listening,
            lambda pids: len(pids) == DISPATCHERS and not set(pids) & after,
            timeout=30,
            what="LISTEN again after a second fault",
        )
        delivered = await eventually(
            polled(lambda: {a.webhook_id for a in hook.received}), lambda ids: len(ids) == 5
        )
        assert len(delivered) == 5
        assert all(a.headers["webhook-id"].startswith("msg_") for a in hook.received)
        assert endpoint["id"]
    finally:
        await conn.close()
        await hook.stop()
