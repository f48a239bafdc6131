"""Outbox rows the relay parked because Kafka refused them: list them, and send them again
once the cause is fixed (a broker limit raised, say).

    python -m fulfilkit.parked list [--schema orders] [--limit 100]
    python -m fulfilkit.parked requeue --schema orders SEQ [SEQ ...]

Both read `DATABASE_URL`. `list` prints one JSON object a line, oldest first.
"""

import argparse
import asyncio
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from fulfilkit.outbox import channel

Db = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class ParkedRow:
    schema: str
    seq: int
    event_id: UUID
    topic: str
    key: str
    size: int  # bytes of the payload
    created_at: datetime
    parked_at: datetime
    reason: str


async def schemas_with_parking(db: Db) -> list[str]:
    rows = await db.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox_parked'"
        " ORDER BY table_schema"
    )
    return [r["table_schema"] for r in rows]


async def list_parked(
    db: Db, schemas: list[str] | None = None, limit: int = 100
) -> list[ParkedRow]:
    """The parked rows of `schemas` (default: every schema with an outbox), oldest first."""
    found: list[ParkedRow] = []
    for schema in schemas if schemas is not None else await schemas_with_parking(db):
        rows = await db.fetch(
            f"SELECT seq, event_id, topic, key, octet_length(payload) AS size, created_at,"
            f" parked_at, reason FROM {schema}.outbox_parked ORDER BY parked_at, seq LIMIT $1",
            limit,
        )
        found += [ParkedRow(schema, **dict(r)) for r in rows]
    return sorted(found, key=lambda r: r.parked_at)[:limit]


async def requeue(db: Db, schema: str, seqs: list[int]) -> int:
    """Put parked rows back at the end of the outbox (its relay publishes them next); returns
    how many were moved."""
    moved = await db.fetchval(
        f"WITH back AS (DELETE FROM {schema}.outbox_parked WHERE seq = ANY($1::bigint[])"
        "  RETURNING seq, event_id, topic, key, payload, event_type, traceparent),"
        f" added AS (INSERT INTO {schema}.outbox"
        "  (event_id, topic, key, payload, event_type, traceparent)"
        "  SELECT event_id, topic, key, payload, event_type, traceparent FROM back"
        "  ORDER BY seq RETURNING 1)"
        " SELECT count(*) FROM added, LATERAL (SELECT pg_notify($2, '')) AS woken",
        seqs,
        channel(schema),
    )
    return int(moved or 0)


def _json_default(value: Any) -> Any:
    if isinstance(value, UUID | datetime):
        return str(value)
    raise TypeError(type(value))


async def _main(args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    try:
        if args.command == "list":
            for row in await list_parked(conn, [args.schema] if args.schema else None, args.limit):
                sys.stdout.write(orjson.dumps(asdict(row), default=_json_default).decode() + "\n")
            return 0
        moved = await requeue(conn, args.schema, args.seqs)
        print(f"{moved} row(s) back in {args.schema}.outbox")
        return 0 if moved == len(set(args.seqs)) else 1
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fulfilkit.parked", description="Outbox rows Kafka refused, moved aside."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print parked rows as JSON lines")
    listing.add_argument("--schema", help="one service's schema (default: all)")
    listing.add_argument("--limit", type=int, default=100)
    again = commands.add_parser("requeue", help="put parked rows back into the outbox")
    again.add_argument("--schema", required=True)
    again.add_argument("seqs", type=int, nargs="+")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
