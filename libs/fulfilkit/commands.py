"""What `python -m <service>` runs, for every service (each one's `__main__` calls `main`):

    python -m <service> [serve] [--host H] [--port P] [--workers N]
        serve the service with uvicorn (uvloop, httptools)
    python -m <service> migrate
        apply the service's migrations to DATABASE_URL, say which, and exit

`migrate` exits 0 when the schema is up to date (whether or not it applied anything),
1 when it refuses (the schema is newer than this code) or a migration fails, and 3 when
PostgreSQL cannot be reached. It reads DATABASE_URL alone: it needs none of the service's
secrets.
"""

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import uvicorn

from fulfilkit.db import CONNECTION_ERRORS, SchemaMismatch, create_pool, migrate
from fulfilkit.settings import ServiceSettings

REFUSED = 1
UNREACHABLE = 3
CONNECT_TIMEOUT_SECONDS = 10.0


def main(service: str, app: str, migrations: Path, argv: Sequence[str] | None = None) -> int:
    """`app` is the service's app factory (`orders.app:create_app`); `migrations` its
    directory of `NNN_*.sql` files."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["migrate"]:
        _migrate_parser(service).parse_args(args[1:])
        return run_migrations(service, migrations)
    if args[:1] == ["serve"]:
        args = args[1:]
    options = _serve_parser(service).parse_args(args)
    uvicorn.run(
        app,
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        proxy_headers=True,
    )
    return 0


def _serve_parser(service: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {service} [serve]",
        description=f"Serve the {service} service; `python -m {service} migrate` applies its"
        " migrations and exits.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    return parser


def _migrate_parser(service: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"python -m {service} migrate",
        description=f"Apply the {service} service's migrations to DATABASE_URL and exit: 0 when"
        f" the schema is up to date, {REFUSED} when it is newer than this code or a migration"
        f" fails, {UNREACHABLE} when PostgreSQL cannot be reached.",
    )


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or ServiceSettings.model_fields["database_url"].default


def where(dsn: str) -> str:
    """The server and database of `dsn`, without its credentials."""
    try:
        parts = urlsplit(dsn)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        host = query.get("host") or parts.hostname or "localhost"
        port = query.get("port") or parts.port or 5432
        return f"{host}:{port}{parts.path or '/'}"
    except ValueError:
        return "DATABASE_URL"


class CannotConnect(Exception):
    """PostgreSQL refused or did not answer the connection (down, wrong address, role,
    password or database)."""


def run_migrations(service: str, migrations: Path) -> int:
    dsn = database_url()
    try:
        applied = asyncio.run(_migrate(service, migrations, dsn))
    except (CannotConnect, *CONNECTION_ERRORS) as exc:
        reason = exc.__cause__ if isinstance(exc, CannotConnect) else exc
        print(
            f"error: cannot reach PostgreSQL at {where(dsn)} to migrate the {service} schema:"
            f" {reason!r}",
            file=sys.stderr,
        )
        return UNREACHABLE
    except SchemaMismatch as exc:
        print(f"error: refusing to migrate: {exc}", file=sys.stderr)
        return REFUSED
    except Exception as exc:  # a failing script: nothing of this run stays applied
        print(
            f"error: migrating the {service} schema failed, nothing was applied: {exc!r}",
            file=sys.stderr,
        )
        return REFUSED
    if applied:
        print(f"applied to the {service} schema: {', '.join(applied)}")
    else:
        print(f"the {service} schema is up to date: nothing to apply")
    return 0


async def _migrate(service: str, migrations: Path, dsn: str) -> list[str]:
    try:
        pool = await create_pool(
            dsn,
            min_size=1,
            max_size=1,
            application_name=f"{service}-migrate",
            acquire_timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except Exception as exc:
        raise CannotConnect() from exc
    try:
        return await migrate(pool, service, migrations)
    finally:
        await pool.close()
