"""Operator commands against the gateway's database (DATABASE_URL), for first setup: the
first tenant before any admin client exists (the compose file's demo tenant). Day to day,
`fulfil tenants ...` does the same through the admin API.

    python -m gateway.cli create-tenant NAME [--scope S ...]   prints the first API key
    python -m gateway.cli create-key TENANT [--scope S ...] [--name NAME]

Keys get every scope but `admin` unless --scope says otherwise.
    python -m gateway.cli revoke-key KEY_ID

The key alone goes to stdout (so `KEY=$(python -m gateway.cli create-tenant demo)` works);
`--json` prints the whole record instead.
"""

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson

from fulfilkit.db import SchemaMismatch, create_pool, migrate
from fulfilkit.errors import Duplicated, NotFound
from fulfilkit.settings import ServiceSettings
from gateway import usecases
from gateway.app import MIGRATIONS
from gateway.domain import DEFAULT_SCOPES, SCOPES


class CommandFailed(Exception):
    pass


def _database_url() -> str:
    return os.environ.get("DATABASE_URL", ServiceSettings.model_fields["database_url"].default)


def _print(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
    elif "api_key" in record:
        print(record["api_key"])


async def _create_tenant(args: argparse.Namespace) -> dict[str, Any]:
    try:
        created = await usecases.create_tenant(args.pool, args.name, args.scope or DEFAULT_SCOPES)
    except Duplicated:
        raise CommandFailed(f"a tenant named {args.name!r} already exists") from None
    tenant, key = created.tenant, created.first_key
    print(f"created tenant {tenant.name} ({tenant.id}), key {key.key.id}", file=sys.stderr)
    return {
        "tenant": {
            "id": str(tenant.id),
            "name": tenant.name,
            "created_at": tenant.created_at.isoformat(),
        },
        "key_id": str(key.key.id),
        "api_key": key.secret,
        "scopes": list(key.key.scopes),
    }


async def _create_key(args: argparse.Namespace) -> dict[str, Any]:
    try:
        tenant = await usecases.find_tenant(args.pool, args.tenant)
    except NotFound:
        raise CommandFailed(f"no tenant {args.tenant!r}") from None
    key = await usecases.issue_key(args.pool, tenant.id, args.scope or DEFAULT_SCOPES, args.name)
    print(f"created key {key.key.id} for tenant {tenant.name} ({tenant.id})", file=sys.stderr)
    return {
        "tenant_id": str(tenant.id),
        "key_id": str(key.key.id),
        "api_key": key.secret,
        "scopes": list(key.key.scopes),
    }


async def _revoke_key(args: argparse.Namespace) -> dict[str, Any]:
    try:
        key = await usecases.revoke_key(args.pool, args.key_id)
    except NotFound:
        raise CommandFailed(f"no API key {args.key_id}") from None
    print(f"revoked key {key.id} ({key.prefix}...)", file=sys.stderr)
    return {"key_id": str(key.id), "revoked_at": key.revoked_at and key.revoked_at.isoformat()}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the whole record as JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    tenant = commands.add_parser("create-tenant", help="create a tenant and its first API key")
    tenant.add_argument("name")
    tenant.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help="repeatable; every scope but admin when left out",
    )
    tenant.set_defaults(run=_create_tenant)
    key = commands.add_parser("create-key", help="issue another API key for a tenant")
    key.add_argument("tenant", help="tenant id or name")
    key.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help="repeatable; every scope but admin when left out",
    )
    key.add_argument("--name", help="what the key is for, shown in key listings")
    key.set_defaults(run=_create_key)
    revoke = commands.add_parser(
        "revoke-key", help="revoke an API key (every running gateway refuses it at once)"
    )
    revoke.add_argument("key_id", type=UUID)
    revoke.set_defaults(run=_revoke_key)
    return parser


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    pool = await create_pool(
        _database_url(), min_size=1, max_size=2, application_name="gateway-cli"
    )
    try:
        await migrate(pool, "gateway", MIGRATIONS)
        args.pool = pool
        return await args.run(args)
    finally:
        await pool.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        record = asyncio.run(_run(args))
    except (CommandFailed, SchemaMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print(record, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
