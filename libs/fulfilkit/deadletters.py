"""Events a consumer gave up on, kept in `<schema>.dead_letters` by the inbox: list them, show
one, replay them once the cause is fixed, purge them.

A replay is one transaction: it deletes the inbox's `dead_lettered` mark of that consumer
and event, and puts the original record into the service's own outbox, whose relay
publishes it to the original topic (every other consumer's inbox skips it by its event
id). The dead letter stays, marked `replayed`; should the event fail again, it comes back
as a new dead letter.

From a shell: `fulfil dead-letters list|show|replay|purge --service NAME` (the command
line, through the gateway's admin API); `python -m fulfilkit.deadletters` only points there.
"""

import base64
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson

from fulfilkit.outbox import channel

Db = asyncpg.Connection | asyncpg.Pool
State = Literal["dead", "replayed"]
Outcome = Literal["replayed", "already_replayed", "not_replayable", "not_found"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_IDS = 500  # ids of a replay or purge: their JSON fits ADMIN_MAX_BODY_BYTES
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_CURSOR = re.compile(r"^[1-9][0-9]{0,17}$")

_COLUMNS = (
    "id, consumer, event_id, event_type, topic, kafka_partition, kafka_offset, key, error,"
    " replayable, failed_at, state, replayed_at"
)


class InvalidCursor(ValueError):
    """A cursor this module did not give out."""


@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer: str
    event_id: UUID | None  # None: the record was not a readable event
    event_type: str | None
    topic: str  # where the record was consumed from
    partition: int
    offset: int
    key: str | None
    error: str
    replayable: bool
    failed_at: datetime
    state: State
    replayed_at: datetime | None


@dataclass(frozen=True)
class DeadLetterDetail(DeadLetter):
    value: str | None  # the record's value as text, when it is UTF-8
    value_base64: str  # the record's value, byte for byte
    headers: list[dict[str, str]]  # the record's headers: `key`, `value` or `value_base64`


@dataclass(frozen=True)
class DeadLetterPage:
    data: list[DeadLetter]
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True)
class Replayed:
    id: int
    outcome: Outcome
    detail: str


def schema_name(service: str) -> str:
    """A service's schema, checked before it goes into SQL."""
    if not _SCHEMA.match(service):
        raise ValueError(f"{service!r} is not a service name")
    return service


def decode_cursor(cursor: str | None) -> int:
    """The id after which a page starts (0: from the oldest)."""
    if cursor is None:
        return 0
    if not _CURSOR.match(cursor):
        raise InvalidCursor(f"{cursor!r} is not a cursor this API gave")
    return int(cursor)


def _key_text(key: bytes | None) -> str | None:
    return None if key is None else key.decode(errors="replace")


def _row(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"],
        "consumer": r["consumer"],
        "event_id": r["event_id"],
        "event_type": r["event_type"],
        "topic": r["topic"],
        "partition": r["kafka_partition"],
        "offset": r["kafka_offset"],
        "key": _key_text(r["key"]),
        "error": r["error"],
        "replayable": r["replayable"],
        "failed_at": r["failed_at"],
        "state": r["state"],
        "replayed_at": r["replayed_at"],
    }


async def list_dead_letters(
    db: Db,
    schema: str,
    *,
    consumer: str | None = None,
    topic: str | None = None,
    event_type: str | None = None,
    state: State | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> DeadLetterPage:
    """One page of dead letters, oldest first; `next_cursor` fetches the next page."""
    after = decode_cursor(cursor)
    limit = max(1, min(limit, MAX_LIMIT))
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM {schema_name(schema)}.dead_letters WHERE id > $1"
        " AND ($2::text IS NULL OR consumer = $2) AND ($3::text IS NULL OR topic = $3)"
        " AND ($4::text IS NULL OR event_type = $4) AND ($5::text IS NULL OR state = $5)"
        " ORDER BY id LIMIT $6",
        after,
        consumer,
        topic,
        event_type,
        state,
        limit + 1,
    )
    page = [DeadLetter(**_row(r)) for r in rows[:limit]]
    return DeadLetterPage(page, str(page[-1].id) if len(rows) > limit else None)


async def get_dead_letter(db: Db, schema: str, dead_letter_id: int) -> DeadLetterDetail | None:
    """One dead letter with the record's value and headers, or None."""
    r = await db.fetchrow(
        f"SELECT {_COLUMNS}, value, headers FROM {schema_name(schema)}.dead_letters WHERE id = $1",
        dead_letter_id,
    )
    if r is None:
        return None
    value: bytes = r["value"]
    try:
        text: str | None = value.decode()
    except UnicodeDecodeError:
        text = None
    return DeadLetterDetail(
        **_row(r),
        value=text,
        value_base64=base64.b64encode(value).decode(),
        headers=list(r["headers"] or []),
    )


async def replay(pool: asyncpg.Pool, schema: str, ids: Sequence[int]) -> list[Replayed]:
    """Replays the dead letters `ids` in one transaction: for each replayable one not yet
    replayed, the inbox's mark goes, the record goes into `<schema>.outbox`, and the dead
    letter is marked `replayed`. Returns the outcome of each id, in the order given."""
    schema = schema_name(schema)
    wanted = list(dict.fromkeys(ids))
    async with pool.acquire() as conn, conn.transaction():
        rows = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, consumer, event_id, event_type, topic, key, value, headers,"
                " replayable, state, error"
                f" FROM {schema}.dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id"
                " FOR UPDATE",
                wanted,
            )
        }
        outcomes: dict[int, Replayed] = {}
        chosen = []
        for dead_letter_id in wanted:
            r = rows.get(dead_letter_id)
            refused = _refusal(dead_letter_id, r)
            if refused is not None:
                outcomes[dead_letter_id] = refused
                continue
            chosen.append(r)
            outcomes[dead_letter_id] = Replayed(
                dead_letter_id,
                "replayed",
                f"Event {r['event_id']} is back in the {schema} outbox for {r['topic']}.",
            )
        if chosen:
            await conn.execute(
                f"DELETE FROM {schema}.inbox i USING unnest($1::text[], $2::uuid[])"
                " AS d(consumer, event_id) WHERE i.consumer = d.consumer"
                " AND i.event_id = d.event_id AND i.outcome = 'dead_lettered'",
                [r["consumer"] for r in chosen],
                [r["event_id"] for r in chosen],
            )
            await conn.execute(
                f"INSERT INTO {schema}.outbox"
                " (event_id, topic, key, payload, event_type, traceparent) SELECT * FROM"
                " unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[])",
                [r["event_id"] for r in chosen],
                [r["topic"] for r in chosen],
                [(r["key"] or b"").decode() for r in chosen],
                [r["value"] for r in chosen],
                [r["event_type"] for r in chosen],
                [_traceparent(r["headers"]) for r in chosen],
            )
            await conn.execute(
                f"UPDATE {schema}.dead_letters SET state = 'replayed', replayed_at = now()"
                " WHERE id = ANY($1::bigint[])",
                [r["id"] for r in chosen],
            )
            await conn.execute("SELECT pg_notify($1, '')", channel(schema))
    return [outcomes[i] for i in wanted]


def _traceparent(headers: Any) -> str | None:
    """The trace the dead-lettered record belonged to: a replay continues it."""
    for header in (orjson.loads(headers) if isinstance(headers, str | bytes) else headers) or ():
        if header.get("key") == "traceparent":
            return header.get("value")
    return None


def _refusal(dead_letter_id: int, r: asyncpg.Record | None) -> Replayed | None:
    if r is None:
        return Replayed(dead_letter_id, "not_found", f"No dead letter {dead_letter_id}.")
    if r["state"] == "replayed":
        return Replayed(
            dead_letter_id,
            "already_replayed",
            f"Dead letter {dead_letter_id} was replayed already; should the event have failed"
            " again, it is a newer dead letter.",
        )
    if not r["replayable"] or r["event_id"] is None:
        return Replayed(
            dead_letter_id,
            "not_replayable",
            f"Dead letter {dead_letter_id} cannot be replayed: the record would be refused"
            f" again ({r['error'][:200]}). Purge it instead.",
        )
    try:
        (r["key"] or b"").decode()
    except UnicodeDecodeError:
        return Replayed(
            dead_letter_id,
            "not_replayable",
            f"Dead letter {dead_letter_id} cannot be replayed: its key is not UTF-8.",
        )
    return None


async def purge(
    db: Db,
    schema: str,
    *,
    ids: Sequence[int] | None = None,
    older_than: datetime | None = None,
) -> int:
    """Deletes the dead letters `ids`, or those that failed before `older_than`; returns how
    many went. One of the two must be given."""
    if (ids is None) == (older_than is None):
        raise ValueError("purge either ids or those older than a time")
    status = await db.execute(
        f"DELETE FROM {schema_name(schema)}.dead_letters"
        " WHERE id = ANY($1::bigint[]) OR failed_at < $2",
        list(ids or []),
        older_than,
    )
    return int(status.split()[-1])


# --- command line ----------------------------------------------------------------------------


MOVED = (
    "Dead letters are handled by the `fulfil` command line, through the gateway's admin API:\n"
    "  fulfil dead-letters list|show|replay|purge --service NAME   (FULFIL_URL,"
    " FULFIL_ADMIN_TOKEN)\n"
    "`fulfil dead-letters --help` has the details."
)


def main(argv: list[str] | None = None) -> int:
    """`python -m fulfilkit.deadletters`: a pointer to `fulfil dead-letters`."""
    print(MOVED, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
