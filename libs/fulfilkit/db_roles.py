"""One PostgreSQL role per service, owning that service's schema and nothing else.

Run once per deployment (and again at any time: it is idempotent) as a superuser:

    DATABASE_URL=postgresql://postgres:...@host/db \\
    ORDERS_DB_PASSWORD=... STOCK_DB_PASSWORD=... FULFILMENT_DB_PASSWORD=... \\
    WEBHOOKS_DB_PASSWORD=... GATEWAY_DB_PASSWORD=... python -m fulfilkit.db_roles

Each service then connects as `fulfil_<service>` (see `service_dsn`). The role may log in,
owns its schema (so it can migrate it), may not create schemas, and has no privilege on the
other services' schemas.
"""

import asyncio
import os
import sys
from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from fulfilkit.settings import DEVELOPMENT, weak_secret_reason

SCHEMAS = ("gateway", "orders", "stock", "fulfilment", "webhooks")
ROLE_PREFIX = "fulfil_"


def role_of(schema: str) -> str:
    return ROLE_PREFIX + schema


def service_dsn(superuser_dsn: str, schema: str, password: str) -> str:
    """`superuser_dsn` with the user and password of `schema`'s role."""
    parts = urlsplit(superuser_dsn)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{role_of(schema)}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


async def create_roles(conn: asyncpg.Connection, passwords: Mapping[str, str]) -> None:
    """Creates (or updates) each schema's role with its password and hands it the schema and
    everything already in it; takes CREATE on the public schema from everyone."""
    await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    for schema, password in passwords.items():
        if schema not in SCHEMAS:
            raise ValueError(f"unknown schema {schema!r}; known: {SCHEMAS}")
        role = role_of(schema)
        exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        # PASSWORD takes no bind parameter; quote_literal makes the value safe to inline
        literal = await conn.fetchval("SELECT quote_literal($1)", password)
        await conn.execute(
            f'{verb} ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal}'
        )
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{role}"')
        await conn.execute(_REASSIGN.format(schema=schema, role=role))


# The schema and what a superuser made in it before it had a role (an older deployment).
# Only what the role does not own yet: ALTER ... OWNER locks the table, and a running
# service holds locks on its tables.
_REASSIGN = """
DO $$
DECLARE item record;
BEGIN
    IF (SELECT nspowner FROM pg_namespace WHERE nspname = '{schema}')
       <> '{role}'::regrole THEN
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', '{schema}', '{role}');
    END IF;
    FOR item IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND c.relowner <> '{role}'::regrole
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'a')
    LOOP
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', '{schema}', item.relname, '{role}');
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS routine FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = '{schema}' AND p.proowner <> '{role}'::regrole
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', item.routine, '{role}');
    END LOOP;
END $$
"""


async def bootstrap(superuser_dsn: str, passwords: Mapping[str, str]) -> dict[str, str]:
    """Creates the roles; returns each service's DATABASE_URL."""
    conn = await asyncpg.connect(superuser_dsn)
    try:
        async with conn.transaction():
            # one bootstrap at a time: several launchers may share a server
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('fulfil:roles'))")
            await create_roles(conn, passwords)
    finally:
        await conn.close()
    return {schema: service_dsn(superuser_dsn, schema, pw) for schema, pw in passwords.items()}


def main() -> int:
    dsn = os.environ.get("DATABASE_URL")
    passwords = {s: os.environ.get(f"{s.upper()}_DB_PASSWORD", "") for s in SCHEMAS}
    missing = [f"{s.upper()}_DB_PASSWORD" for s, pw in passwords.items() if not pw]
    if not dsn or missing:
        print(
            f"set DATABASE_URL (a superuser) and {', '.join(missing) or 'the passwords'}",
            file=sys.stderr,
        )
        return 2
    weak = [
        f"{s.upper()}_DB_PASSWORD {reason}"
        for s, pw in passwords.items()
        if (reason := weak_secret_reason(pw)) is not None
    ]
    if weak and os.environ.get("ENVIRONMENT", "").strip().lower() != DEVELOPMENT:
        print("; ".join(weak) + " (only ENVIRONMENT=development allows this)", file=sys.stderr)
        return 2
    for schema in asyncio.run(bootstrap(dsn, passwords)):
        print(f"role {role_of(schema)} owns schema {schema}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
