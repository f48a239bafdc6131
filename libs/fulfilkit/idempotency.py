"""A write applied once per (tenant, `Idempotency-Key`), whichever process dies and when.

The key, the request's fingerprint and the answer are written in the transaction of the
effect itself (table `<schema>.idempotent_requests`, one per service schema):

- a retry after the first committed finds the row and gets the stored answer, marked
  `Idempotent-Replayed: true`;
- a concurrent duplicate blocks on the key's primary key until the first transaction ends,
  then replays its answer (or runs itself, when the first rolled back);
- a first attempt that failed left nothing behind, so its retry runs again;
- the same key with a different request (method, path, query or body) is a 409.

Writes whose effect is keyed by their own content (a sale by its `sale_id`) need none of it.
"""

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg
from fastapi import Request, Response
from pydantic import BaseModel

from fulfilkit.db import in_transaction
from fulfilkit.http.problems import Problem
from fulfilkit.retention import PRUNE_BATCH, delete_older_than, prune_every

if TYPE_CHECKING:
    from fulfilkit.service import Runtime

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
PRUNE_INTERVAL_SECONDS = 600.0


@dataclass(frozen=True)
class Answer:
    """What a keyed write answers, as it is stored and replayed."""

    status_code: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    # Stored for replays instead of this answer when it must not be kept (it holds a
    # secret); `once(rebuild=...)` turns it back into the full answer on a replay.
    kept: "Answer | None" = None

    @classmethod
    def json(
        cls,
        model: BaseModel,
        status_code: int = 200,
        *,
        by_alias: bool = False,
        headers: dict[str, str] | None = None,
    ) -> "Answer":
        return cls(
            status_code,
            model.model_dump_json(by_alias=by_alias).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def response(self, *, replayed: bool = False) -> Response:
        headers = {**self.headers, **({REPLAYED_HEADER: "true"} if replayed else {})}
        return Response(self.body, status_code=self.status_code, headers=headers)


def check_key(key: str) -> str:
    """The key as given, or a 400: 1 to 255 visible ASCII characters."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " < ch < "\x7f" for ch in key):
        raise Problem(
            "invalid_request",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters.",
        )
    return key


def fingerprint(method: str, target: str, body: bytes) -> bytes:
    """What makes two requests "the same" for one key: method, path with query, and body."""
    digest = hashlib.sha256(method.upper().encode())
    digest.update(b"\0" + target.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(body)
    return digest.digest()


async def request_fingerprint(request: Request, body: bytes | None = None) -> bytes:
    """The request's fingerprint; `body`, when given, stands for the request's own body."""
    query = request.url.query
    target = f"{request.url.path}?{query}" if query else request.url.path
    return fingerprint(request.method, target, await request.body() if body is None else body)


async def has_answer(pool: asyncpg.Pool, schema: str, tenant_id: UUID, request: Request) -> bool:
    """Whether the request's key already holds a committed answer, so that `once` will replay
    it (or refuse a different request): a write can skip checks only its first run needs."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return False
    return bool(
        await pool.fetchval(
            f"SELECT status_code IS NOT NULL FROM {schema}.idempotent_requests"
            " WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            check_key(key),
        )
    )


async def once(
    pool: asyncpg.Pool,
    schema: str,
    tenant_id: UUID,
    request: Request,
    work: Callable[[asyncpg.Connection], Awaitable[Answer]],
    rebuild: Callable[[asyncpg.Connection, Answer], Awaitable[Answer]] | None = None,
    *,
    fingerprinted_body: bytes | None = None,
) -> Response:
    """Runs `work` in a transaction, once per `Idempotency-Key` when the request has one.

    `work` must do all of its writes on the connection it is given, and raise (so that the
    transaction rolls back) for every answer that must not be replayed. `rebuild` makes the
    answer to a replay from what was stored (`Answer.kept`), in the replay's transaction; it
    may raise (a 409) when that answer cannot be made any more. `fingerprinted_body` stands for
    the body in the request's fingerprint when the body itself must not be hashed (it holds a
    credential) or only its meaning counts.
    """
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return (await in_transaction(pool, work)).response()
    check_key(key)
    request_print = await request_fingerprint(request, fingerprinted_body)

    async def keyed(conn: asyncpg.Connection) -> tuple[Answer, bool]:
        stored = await _claim(conn, schema, tenant_id, key, request_print)
        if stored is not None:
            return (await rebuild(conn, stored) if rebuild else stored), True
        answer = await work(conn)
        kept = answer.kept or answer
        await conn.execute(
            f"UPDATE {schema}.idempotent_requests SET status_code = $3, headers = $4, body = $5"
            " WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            key,
            kept.status_code,
            kept.headers,
            kept.body,
        )
        return answer, False

    answer, replayed = await in_transaction(pool, keyed)
    return answer.response(replayed=replayed)


async def _claim(
    conn: asyncpg.Connection, schema: str, tenant_id: UUID, key: str, request_print: bytes
) -> Answer | None:
    """Takes the key in this transaction (None), or returns the answer stored under it.

    The INSERT waits while another transaction holds the same key; each statement then sees
    what that transaction committed.
    """
    for _ in range(3):
        claimed = await conn.fetchval(
            f"INSERT INTO {schema}.idempotent_requests (tenant_id, key, fingerprint)"
            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            tenant_id,
            key,
            request_print,
        )
        if claimed:
            return None
        row = await conn.fetchrow(
            f"SELECT fingerprint, status_code, headers, body FROM {schema}.idempotent_requests"
            " WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            key,
        )
        if row is None:  # pruned in between: claim again
            continue
        if bytes(row["fingerprint"]) != request_print:
            raise Problem(
                "conflict",
                "This Idempotency-Key was already used with a different request"
                " (method, path or body); use a new key for a new request.",
            )
        return Answer(row["status_code"], bytes(row["body"]), dict(row["headers"]))
    raise RuntimeError(f"idempotency key {key!r} kept changing hands")


async def prune(
    pool: asyncpg.Pool, schema: str, older_than: timedelta, batch: int = PRUNE_BATCH
) -> int:
    """Forgets keys older than `older_than`, one short transaction per batch."""
    return await delete_older_than(
        pool, f"{schema}.idempotent_requests", "tenant_id, key", "created_at", older_than, batch
    )


async def keep_keys_bounded(runtime: "Runtime") -> None:
    """A service's background task: forgets its keys after `IDEMPOTENCY_TTL_HOURS`."""
    ttl = timedelta(hours=runtime.settings.idempotency_ttl_hours)
    await prune_every(
        PRUNE_INTERVAL_SECONDS,
        lambda: prune(runtime.pool, runtime.schema, ttl),
        f"idempotency keys of {runtime.schema} older than {ttl}",
    )
