"""The backorder worker under its supervisor: it survives the loss of its connections (the
LISTEN one that holds leadership, and the pool's), and what it raises reaches the
supervisor instead of being swallowed."""

import asyncio
import uuid

import asyncpg
import pytest

from fulfilkit.db import create_pool, in_transaction
from fulfilkit.service import Runtime
from fulfilkit.supervise import Supervisor
from stock import backorders
from stock.domain import SaleToReserve
from stock.settings import StockSettings
from stock.usecases import levels, reservations
from stock.usecases.levels import LevelChange
from stock.usecases.reservations import SaleChange
from tests.support import eventually

pytestmark = pytest.mark.integration


async def kill_backends(dsn: str, application_name: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = $1) AS killed",
            application_name,
        )
    finally:
        await conn.close()


async def backordered_sale(pool: asyncpg.Pool, tenant: uuid.UUID, stocked) -> tuple:
    record = await stocked("A", 0)
    sale = SaleToReserve(uuid.uuid4(), "S-1", tenant, "wh-1", (("A", 1),))
    await in_transaction(
        pool, lambda conn: reservations.reserve_sales(conn, [SaleChange("created", sale)])
    )
    return record, sale


async def status_of(pool: asyncpg.Pool, sale: SaleToReserve) -> str | None:
    return await pool.fetchval("SELECT status FROM stock.reservations WHERE sale = $1", sale.sale)


async def restock(pool: asyncpg.Pool, tenant: uuid.UUID, record) -> None:
    await in_transaction(
        pool, lambda conn: levels.change_stock(conn, tenant, [LevelChange(record.id, 1)], "t")
    )


async def worker(stock_dsn: str, name: str) -> tuple[asyncpg.Pool, Supervisor]:
    pool = await create_pool(stock_dsn, application_name=name)
    settings = StockSettings(
        database_url=stock_dsn,
        backorder_poll_interval_seconds=0.2,
        backorder_sweep_interval_seconds=60,
    )
    loops = Supervisor(first_delay=0.1, max_delay=1.0)
    runtime: Runtime[None] = Runtime(settings=settings, schema="stock", pool=pool, loops=loops)
    loops.start("backorder_worker", lambda: backorders.run_backorder_worker(runtime))
    return pool, loops


async def leading(pool: asyncpg.Pool, name: str) -> bool:
    """Whether a connection of the pool named `name` holds the worker's lock and listens."""
    return bool(
        await pool.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND a.application_name = $1",
            name,
        )
    )


async def test_a_backorder_is_retried_after_the_worker_lost_its_connections(
    pool, tenant, stocked, stock_dsn
):
    name = f"stock-worker-{uuid.uuid4().hex[:8]}"
    record, sale = await backordered_sale(pool, tenant, stocked)
    worker_pool, loops = await worker(stock_dsn, name)
    try:
        await eventually(lambda: leading(pool, name), bool, what="leading")
        assert await kill_backends(stock_dsn, name) >= 1
        await eventually(
            lambda: leading(pool, name), bool, timeout=30, what="leading again on a new connection"
        )
        assert loops.loops["backorder_worker"].failures >= 1
        await restock(pool, tenant, record)
        await eventually(lambda: status_of(pool, sale), lambda s: s == "active", timeout=30)
    finally:
        await loops.stop()
        await worker_pool.close()


async def test_a_failing_retry_reaches_the_supervisor_and_the_worker_starts_again(
    pool, tenant, stocked, stock_dsn, monkeypatch
):
    retry, failures = backorders.retry_woken_backorders, []

    async def fails_once(worker_pool: asyncpg.Pool) -> int:
        if not failures:
            failures.append(1)
            raise RuntimeError("a retry broke")
        return await retry(worker_pool)

    monkeypatch.setattr(backorders, "retry_woken_backorders", fails_once)
    name = f"stock-worker-{uuid.uuid4().hex[:8]}"
    record, sale = await backordered_sale(pool, tenant, stocked)
    worker_pool, loops = await worker(stock_dsn, name)
    try:
        status = loops.loops["backorder_worker"]
        await eventually(
            lambda: asyncio.sleep(0, status.failures), lambda n: n == 1, what="a failure"
        )
        assert status.last_error == "RuntimeError: a retry broke"
        await restock(pool, tenant, record)
        await eventually(lambda: status_of(pool, sale), lambda s: s == "active", timeout=30)
    finally:
        await loops.stop()
        await worker_pool.close()
