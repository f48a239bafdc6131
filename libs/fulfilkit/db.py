import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson

from fulfilkit.metrics import until_commit

HERE = Path(__file__).parent
# Every service's schema gets these first, in this order, then its own `NNN_*.sql`.
SHARED_SCRIPTS = (
    ("000_messaging", HERE / "messaging.sql"),
    ("000_messaging_inbox_by_age", HERE / "messaging_inbox_by_age.sql"),
    ("000_messaging_outbox_delete_published", HERE / "messaging_outbox_delete_published.sql"),
    ("000_messaging_lean_indexes", HERE / "messaging_lean_indexes.sql"),
    ("000_messaging_outbox_parked", HERE / "messaging_outbox_parked.sql"),
    ("000_messaging_idempotency", HERE / "messaging_idempotency.sql"),
    ("000_messaging_dead_letters", HERE / "messaging_dead_letters.sql"),
    ("000_messaging_outbox_trace_context", HERE / "messaging_outbox_trace_context.sql"),
    ("000_messaging_inbox_dead_lettered", HERE / "messaging_inbox_dead_lettered.sql"),
)
T = TypeVar("T")
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# PostgreSQL cannot be reached or used right now (down, restarting, in crash recovery, out of
# connections, or a connection wait ran out): a dependency outage, not a fault of the work.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,  # includes a connection asyncpg already closed
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # starting up, shutting down or in crash recovery
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # the server went away in the middle of a statement ("cannot switch to state ...")
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,  # a pool acquire or connect that ran out
)
DEFAULT_ACQUIRE_TIMEOUT = 10.0


class TimedPool(asyncpg.Pool):
    """A pool whose every acquire, its own shortcuts (`fetch`, `execute`, ...) included, gives
    up after `acquire_timeout` seconds instead of waiting forever for a free connection."""

    def __init__(
        self, *args: Any, acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo on release: the platform sets no session state on pooled connections
    (listeners and advisory locks live on connections held for a loop's lifetime), so the
    server round trip of asyncpg's default reset is saved on every acquire."""


async def create_pool(
    dsn: str,
    min_size: int = 2,
    max_size: int = 20,
    *,
    application_name: str = "fulfilkit",
    settings: Mapping[str, str] | None = None,
    acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT,
) -> asyncpg.Pool:
    """`application_name` names the connections in `pg_stat_activity` and the server log;
    `settings` are further server settings of every connection. Taking a connection from the
    pool, and opening one, give up after `acquire_timeout` seconds (`TimeoutError`)."""
    pool = TimedPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        connect=None,
        setup=None,
        init=_init_connection,
        reset=_keep_session,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        acquire_timeout=acquire_timeout,
        command_timeout=30,
        timeout=acquire_timeout,
        server_settings={**(settings or {}), "application_name": application_name},
    )
    await pool
    return pool


class SchemaMismatch(RuntimeError):
    """The schema in the database is not the one this code was written for."""

    def __init__(self, message: str, schema: str, migrations: list[str]) -> None:
        super().__init__(message)
        self.schema = schema
        self.migrations = migrations


class SchemaNewerThanCode(SchemaMismatch):
    """The schema has migrations this code does not have: a newer release applied them."""

    def __init__(self, schema: str, unknown: list[str]) -> None:
        super().__init__(
            f"the {schema} schema is newer than this code: it has migrations this release"
            f" does not know ({', '.join(unknown)}); run a release that has them, or restore"
            " the database from before they were applied",
            schema,
            unknown,
        )


class SchemaBehindCode(SchemaMismatch):
    """The schema lacks migrations this code needs (and is not to apply them itself)."""

    def __init__(self, schema: str, missing: list[str]) -> None:
        super().__init__(
            f"the {schema} schema lacks migrations this code needs ({', '.join(missing)}):"
            f" run `python -m {schema} migrate` first (MIGRATE_ON_START is false)",
            schema,
            missing,
        )


def migration_scripts(schema: str, migrations_dir: Path) -> list[tuple[str, str]]:
    """(name, SQL) of every migration of `schema`, in the order they apply: the shared
    messaging tables, then the service's own `NNN_*.sql` files."""
    scripts = [(name, path.read_text().format(schema=schema)) for name, path in SHARED_SCRIPTS]
    return scripts + [(p.stem, p.read_text()) for p in sorted(migrations_dir.glob("*.sql"))]


async def _applied(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Names in `<schema>.schema_migrations`, in the order applied; none when it is missing."""
    if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations") is None:
        return []
    rows = await conn.fetch(f"SELECT name FROM {schema}.schema_migrations ORDER BY applied_at")
    return [r["name"] for r in rows]


def _unknown(applied: list[str], scripts: list[tuple[str, str]]) -> list[str]:
    known = {name for name, _ in scripts}
    return [name for name in applied if name not in known]


async def migrate(pool: asyncpg.Pool, schema: str, migrations_dir: Path) -> list[str]:
    """Apply the shared messaging tables, then the service's `NNN_*.sql` files, in order, once.

    Safe to run concurrently from several replicas: an advisory lock serialises them.
    Returns the names applied by this call. Raises `SchemaNewerThanCode`, applying nothing,
    when the schema has a migration this code does not have.
    """
    scripts = migration_scripts(schema, migrations_dir)
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        done = await _applied(conn, schema)
        if unknown := _unknown(done, scripts):
            raise SchemaNewerThanCode(schema, unknown)
        # A service's own role owns its schema but may not create schemas (fulfilkit.db_roles)
        if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for name, sql in scripts:
            if name in done:
                continue
            await conn.execute(sql)
            await conn.execute(f"INSERT INTO {schema}.schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
    return applied


async def check_schema(pool: asyncpg.Pool, schema: str, migrations_dir: Path) -> None:
    """Raise `SchemaNewerThanCode` or `SchemaBehindCode` unless the schema has exactly the
    migrations this code has (for a service that does not migrate at start)."""
    scripts = migration_scripts(schema, migrations_dir)
    async with pool.acquire() as conn:
        done = await _applied(conn, schema)
    if unknown := _unknown(done, scripts):
        raise SchemaNewerThanCode(schema, unknown)
    if missing := [name for name, _ in scripts if name not in set(done)]:
        raise SchemaBehindCode(schema, missing)


async def in_transaction(
    pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]], attempts: int = 3
) -> T:
    """Run `work` in a transaction; retry it when PostgreSQL chose it as a deadlock victim."""
    for attempt in range(attempts):
        try:
            with until_commit():  # what `work` counts, it counts once it committed
                async with pool.acquire() as conn, conn.transaction():
                    return await work(conn)
        except RETRYABLE:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")
