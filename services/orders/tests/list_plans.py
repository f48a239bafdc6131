"""The plans and times of `GET /sales`'s queries on a tenant with many sales (not a test).

    python services/orders/tests/list_plans.py [--sales 100000] [--plans]

Under `python -m deploy.local infra --` (it needs DATABASE_URL): migrates the orders schema
of the checkout it runs in into a database of its own, fills it with one tenant's
`--sales` sales and two other tenants' half as many each (statuses as an established shop's:
the older nine tenths shipped, delivered or canceled, the newest tenth in every status),
then, for each list the API
offers, prints the median time of `store.list_sales` (20 calls on one connection, after 10,
so that PostgreSQL has settled on its plan for the prepared statements) and, with
`--plans`, `EXPLAIN (ANALYZE, BUFFERS)` of its two statements as run then.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from fulfilkit.db import create_pool, migrate
from orders import store

# status, share of a tenant's newest tenth of sales; the older ones are shipped (70%),
# delivered (24%) or canceled (6%)
STATUSES = [
    ("shipped", 0.25),
    ("delivered", 0.15),
    ("canceled", 0.05),
    ("pending", 0.2),
    ("in_fulfillment", 0.15),
    ("awaiting_stock", 0.1),
    ("backordered", 0.1),
]
START = datetime(2026, 1, 1, tzinfo=UTC)


class Recording:
    """A connection that notes each statement it runs (and its arguments)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.settings: list[str] = []

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self.conn.fetch(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        self.settings.append(sql)  # SET LOCAL: the plans are explained under them too
        return await self.conn.execute(sql, *args)

    def transaction(self) -> Any:
        return self.conn.transaction()


async def fill(conn: asyncpg.Connection, tenant: uuid.UUID, n: int) -> None:
    cases = []
    edge = 0.0
    for status, share in STATUSES:
        edge += share
        cases.append(f"WHEN r < {edge} THEN '{status}'")
    await conn.execute(
        "INSERT INTO orders.sales (id, tenant_id, sale_id, status, shop, location_id, lines,"
        " created_at, updated_at, priority, ship_by)"
        f" SELECT gen_random_uuid(), $1, 'S' || lpad(g::text, 7, '0'),"
        f" CASE WHEN g <= $3 * 0.9 THEN CASE WHEN r < 0.06 THEN 'canceled' WHEN r < 0.3"
        " THEN 'delivered' ELSE 'shipped' END"
        f" ELSE CASE {' '.join(cases)} ELSE 'shipped' END END,"
        " jsonb_build_object('channel', CASE WHEN g % 3 = 0 THEN 'web' ELSE 'pos' END),"
        ' \'L1\', \'[{"sku": "A", "quantity": 1}]\','
        " $2::timestamptz + g * interval '5 minutes', $2::timestamptz + g * interval '5 minutes',"
        " CASE WHEN g % 50 = 0 THEN 'urgent' ELSE 'normal' END,"
        " CASE WHEN g % 20 = 0 THEN $2::timestamptz + g * interval '5 minutes' + interval '2 days'"
        " END"
        " FROM (SELECT g, random() AS r FROM generate_series(1, $3) g) x",
        tenant,
        START,
        n,
    )


LISTS: list[tuple[str, dict[str, Any]]] = [
    ("all", {}),
    ("status=pending", {"statuses": ["pending"]}),
    ("status=backordered", {"statuses": ["backordered"]}),
    ("status=awaiting_stock,backordered", {"statuses": ["awaiting_stock", "backordered"]}),
    ("status=shipped", {"statuses": ["shipped"]}),
    ("status=shipped, offset 5000", {"statuses": ["shipped"], "offset": 5000}),
    ("status=in_fulfillment, channel=web", {"statuses": ["in_fulfillment"], "channel": "web"}),
    ("status=shipped, channel=web", {"statuses": ["shipped"], "channel": "web"}),
    (
        "status=delivered, created in a month",
        {
            "statuses": ["delivered"],
            "created_from": START + timedelta(days=100),
            "created_to": START + timedelta(days=130),
        },
    ),
    (
        "created in a month",
        {"created_from": START + timedelta(days=100), "created_to": START + timedelta(days=130)},
    ),
    ("channel=web", {"channel": "web"}),
    ("priority=urgent", {"priority": "urgent"}),
    ("status=pending, priority=urgent", {"statuses": ["pending"], "priority": "urgent"}),
    ("ship_by_before", {"ship_by_before": START + timedelta(days=60)}),
    ("sale_id prefix", {"sale_id_prefix": "S00123"}),
    ("status=pending, sale_id prefix", {"statuses": ["pending"], "sale_id_prefix": "S001"}),
]


def _on_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--plans", action="store_true")
    args = parser.parse_args()
    dsn = os.environ["DATABASE_URL"]
    name = f"list_plans_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        pool = await create_pool(_on_database(dsn, name))
        await migrate(pool, "orders", Path(store.__file__).parent / "migrations")
        tenant, others = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
        async with pool.acquire() as conn:
            await fill(conn, tenant, args.sales)
            for other in others:
                await fill(conn, other, args.sales // 2)
            await conn.execute("VACUUM (ANALYZE) orders.sales")
            for row in await conn.fetch(
                "SELECT relname, relpages, relallvisible FROM pg_class"
                " WHERE relnamespace = 'orders'::regnamespace"
                " AND relname = 'sales'"
            ):
                print(
                    f"{row['relname']}: {row['relpages']} pages, {row['relallvisible']} all visible"
                )
            indexes = await conn.fetch(
                "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def"
                " FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
                " WHERE c.relnamespace = 'orders'::regnamespace"
                " AND c.relname = 'sales'"
                " ORDER BY 1"
            )
            for row in indexes:
                print(row["def"])
            print(f"{'list (limit 50)':42} {'total':>7} {'median ms':>10}")
            for label, filters in LISTS:
                kwargs = {
                    "statuses": [],
                    "channel": None,
                    "created_from": None,
                    "created_to": None,
                    "limit": 50,
                    "offset": 0,
                } | filters
                times = []
                for i in range(30):
                    rec = Recording(conn)
                    started = time.perf_counter()
                    _, total = await store.list_sales(rec, tenant, **kwargs)  # type: ignore[arg-type]
                    if i >= 10:
                        times.append((time.perf_counter() - started) * 1000)
                print(f"{label:42} {total:>7} {statistics.median(times):>10.2f}")
                if args.plans:
                    for sql, params in rec.statements:
                        generic, custom = await conn.fetchrow(
                            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                            " WHERE statement = $1",
                            sql,
                        )
                        print(f"    ({generic} generic plans, {custom} custom plans)")
                        async with conn.transaction():
                            for setting in rec.settings:
                                await conn.execute(setting)
                            explain = "GENERIC_PLAN" if generic > custom else "ANALYZE, BUFFERS"
                            plan = await conn.fetch(f"EXPLAIN ({explain}) {sql}", *params)
                        for line in plan:
                            print("    " + line[0])
                        print()
                sys.stdout.flush()
        await pool.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
