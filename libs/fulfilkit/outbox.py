"""Transactional outbox: events are written with the state change, a relay publishes them."""

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    ProducerClosed,
    RecordTooLargeError,
)

from fulfilkit.contracts import TOPIC_OF_TYPE
from fulfilkit.db import CONNECTION_ERRORS as DB_CONNECTION_ERRORS
from fulfilkit.events import CONTENT_TYPE, CloudEvent, Encoded
from fulfilkit.faults import crash_point
from fulfilkit.kafka import KeyPartitioner
from fulfilkit.leader import leadership
from fulfilkit.metrics import UNTYPED, after_commit, committing_later, event_published
from fulfilkit.tracing import TRACEPARENT, outgoing_traceparents

log = logging.getLogger(__name__)

FAILURE_LOG_INTERVAL = 30.0

# How long rows Kafka acknowledged may stay in the outbox when no new row comes to publish
# (they are deleted with the next round's query): long enough that a relay that keeps up
# deletes them with the next notification's round, short enough that the outbox is empty
# moments after the last commit.
SENT_DELETE_SECONDS = 0.2

Keyed = tuple[str, CloudEvent | Encoded]


class Publishable(Protocol):
    """What the outbox keeps of an event: its id, its type and its bytes (a `CloudEvent`, or
    an event a service encoded itself on a hot path)."""

    @property
    def id(self) -> UUID: ...

    @property
    def type(self) -> str: ...

    def to_bytes(self) -> bytes: ...


# The relay's connection is gone (and its leadership with it): start over.
CONNECTION_ERRORS = DB_CONNECTION_ERRORS


def channel(schema: str) -> str:
    return f"{schema}_outbox"


def outbox_insert(schema: str, first: int, only_if: str | None = None) -> str:
    """SQL that inserts the events passed as `outbox_arrays(...)` at parameters `$first` to
    `$first+5`: for a data-modifying CTE, so that a caller writes its state change and its
    events in one statement. `only_if` conditions the insert (`EXISTS (SELECT FROM saved)`)."""
    p = first
    sql = (
        f"INSERT INTO {schema}.outbox (event_id, topic, key, payload, event_type, traceparent)"
        f" SELECT e.* FROM unnest(${p}::uuid[], ${p + 1}::text[], ${p + 2}::text[],"
        f" ${p + 3}::bytea[], ${p + 4}::text[], ${p + 5}::text[])"
        " AS e(event_id, topic, key, payload, event_type, traceparent)"
    )
    return f"{sql} WHERE {only_if}" if only_if else sql


def outbox_arrays(
    events: Sequence[tuple[str, Publishable]],
) -> tuple[list[Any], list[str], list[str], list[bytes], list[str], list[str | None]]:
    """The six arrays `outbox_insert` reads: event ids, topics, keys, payloads, event types
    and the `traceparent` each event carries (`fulfilkit.tracing.outgoing_traceparents`:
    the current request's, or in a consumer batch the incoming event's of the same key)."""
    keys = [k for k, _ in events]
    return (
        [e.id for _, e in events],
        [TOPIC_OF_TYPE[e.type] for _, e in events],
        keys,
        [e.to_bytes() for _, e in events],
        [e.type for _, e in events],
        outgoing_traceparents(keys),
    )


async def add_events(
    conn: asyncpg.Connection, schema: str, events: Sequence[tuple[str, Publishable]]
) -> None:
    """Write events in the caller's transaction; they are published only if it commits."""
    if not events:
        return
    with relay_wake(conn, schema) as notify:
        if notify:
            await conn.execute(
                f"WITH added AS ({outbox_insert(schema, 1)} RETURNING 1) SELECT pg_notify($7, '')",
                *outbox_arrays(events),
                channel(schema),
            )
        else:
            await conn.execute(outbox_insert(schema, 1), *outbox_arrays(events))


OUTBOX_COLUMNS = ["event_id", "topic", "key", "payload", "event_type", "traceparent"]


async def copy_events(
    conn: asyncpg.Connection, schema: str, events: Sequence[tuple[str, Publishable]]
) -> None:
    """`add_events` by binary COPY, for a caller that writes hundreds of events at once: COPY
    takes each row's values as they are, where an `unnest` of arrays has asyncpg check every
    element; one more round trip (the notification) than `add_events`, unless the relay is
    woken in this process (`relay_wake`)."""
    if not events:
        return
    with relay_wake(conn, schema) as notify:
        await conn.copy_records_to_table(
            "outbox",
            schema_name=schema,
            columns=OUTBOX_COLUMNS,
            records=list(zip(*outbox_arrays(events), strict=True)),
        )
        if notify:
            await conn.execute("SELECT pg_notify($1, '')", channel(schema))


# --- waking the relay -------------------------------------------------------------------------
#
# A commit that adds outbox rows wakes the relay that leads the schema's outbox. In another
# process that takes a `NOTIFY` (`pg_notify(channel(schema), '')` in the statement), which
# PostgreSQL queues under a lock it takes at commit, ordering every notifying commit of the
# server, and delivers to the listening connection. When this process's own relay leads, an
# in-process wake after the commit does the same without either. The relay leading each
# schema's outbox from this process, if one does (`OutboxRelay.run` sets and clears it):
_LEADERS: dict[str, "OutboxRelay"] = {}
# Notifications sent after a commit whose relay stopped leading meanwhile (kept till done).
_NOTIFYING: set[asyncio.Task[None]] = set()


def leads(schema: str) -> bool:
    """Whether a relay of this process leads `schema`'s outbox right now."""
    return schema in _LEADERS


@contextlib.contextmanager
def relay_wake(conn: asyncpg.Connection, schema: str, adds: bool = True) -> Iterator[bool]:
    """Around a statement that adds rows to `schema`'s outbox on `conn` (none when `adds` is
    false: nothing to wake for): yields whether the statement must notify `channel(schema)`
    itself. It need not (False) when this process's relay leads and the commit is known
    here: the statement commits by itself (no transaction is open on `conn`: the relay is
    woken when the block ends), or its transaction runs inside
    `fulfilkit.metrics.until_commit` (the inbox's, `fulfilkit.db.in_transaction`'s: woken
    once that commits). A relay that stopped leading meanwhile (its connection lost, say)
    notifies through its pool instead, for whoever leads now; a leader that took over in
    between finds the rows with its first round, or at worst after its `idle_check`."""
    leader = _LEADERS.get(schema) if adds else None
    if leader is None or leader.loop is not asyncio.get_running_loop():
        yield True  # no relay leads here (one of another event loop cannot be woken from it)
        return
    if not conn.is_in_transaction():
        yield False
        leader.rows_committed()  # the statement committed (an error skips this)
        return
    if not committing_later():
        yield True  # a transaction whose commit this process cannot see: notify as before
        return
    yield False
    after_commit(leader.rows_committed)


# A row this large or larger is sent with a `send` of its own, which checks its size against
# the producer's limit; smaller ones go in record batches (`OutboxRelay._send`), which take
# any row below the producer's batch size (256 KiB, `fulfilkit.kafka.make_producer`).
LARGE_ROW = 64 * 1024


class OutboxRelay:
    """Publishes unpublished outbox rows in order, in batches; one active relay per schema.

    Rows are deleted only after Kafka acknowledged them, so a crash in between republishes
    them (at least once); consumers deduplicate by event id. The delete of one batch travels
    with the query for the next, so a busy relay spends one database round trip per batch.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        idle_check: float = 5.0,
        linger: float = 0.0,
        park_after: int = 5,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._idle_check = idle_check
        self._linger = linger
        self._wake = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop it leads from
        self._partitioner = KeyPartitioner()  # the producer's own choice (`make_producer`)
        self._sent: list[int] = []  # acknowledged by Kafka, deleted with the next query
        self._park_after = park_after
        self._failures: dict[int, int] = {}  # seq -> times Kafka refused it in a row
        self.parked = 0  # rows this relay moved aside
        self._failing_since: float | None = None
        self._last_failure_log = 0.0
        self._park_sql = (
            f"WITH moved AS (DELETE FROM {schema}.outbox WHERE seq = ANY($1::bigint[])"
            " RETURNING seq, event_id, topic, key, payload, created_at, event_type, traceparent)"
            f" INSERT INTO {schema}.outbox_parked"
            " (seq, event_id, topic, key, payload, created_at, event_type, traceparent, reason)"
            " SELECT m.seq, m.event_id, m.topic, m.key, m.payload, m.created_at, m.event_type,"
            " m.traceparent, r.reason"
            " FROM moved m JOIN unnest($1::bigint[], $2::text[]) AS r(seq, reason)"
            " ON r.seq = m.seq"
        )
        self._next_batch_sql = (
            f"WITH sent AS (DELETE FROM {schema}.outbox WHERE seq = ANY($1::bigint[]))"
            " SELECT seq, topic, key, payload, event_id, event_type, traceparent"
            f" FROM {schema}.outbox"
            " WHERE seq <> ALL($1::bigint[]) ORDER BY seq LIMIT $2"
        )

    async def run(self) -> None:
        """Publish for as long as this replica holds the relay's lock. Raises when its
        connection is lost (and the lock with it): run it under a `Supervisor`, which starts
        it again, and it queues up for the lock again."""
        self._sent = []  # whoever led before may not have deleted them: publish them again
        async with leadership(
            self._pool,
            f"outbox:{self._schema}",
            channel(self._schema),
            self._on_notify,
            self._poll_interval,
        ) as conn:
            # A lost connection ends an idle wait at once: the next query raises, and the
            # relay queues up for the lock again instead of sleeping on a dead listener.
            conn.add_termination_listener(self._on_lost)
            self.loop = asyncio.get_running_loop()
            _LEADERS[self._schema] = self  # commits in this process wake it (`relay_wake`)
            try:
                await self._loop(conn)
            finally:
                self._step_down()
                conn.remove_termination_listener(self._on_lost)

    @property
    def leading(self) -> bool:
        return _LEADERS.get(self._schema) is self

    def _step_down(self) -> None:
        """Commits from now on notify, for whoever leads next."""
        if self.leading:
            del _LEADERS[self._schema]

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _on_lost(self, *_: object) -> None:
        self._step_down()
        self._wake.set()

    def rows_committed(self) -> None:
        """Rows were committed to the outbox without a notification, counting on this relay:
        look for them, as a notification would make it; if it no longer leads, notify
        whoever does now (a failure is left to that leader's `idle_check`)."""
        if self.leading:
            self._wake.set()
            return
        task = asyncio.get_running_loop().create_task(self._notify())
        _NOTIFYING.add(task)
        task.add_done_callback(_NOTIFYING.discard)

    async def _notify(self) -> None:
        with contextlib.suppress(Exception):
            await self._pool.execute("SELECT pg_notify($1, '')", channel(self._schema))

    def _failing(self, error: Exception) -> None:
        """One line when publishing starts failing, then one every `FAILURE_LOG_INTERVAL`."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._last_failure_log < FAILURE_LOG_INTERVAL:
            return
        self._last_failure_log = now
        log.warning(
            "outbox relay for %s cannot publish (for %.0fs), retrying: %r",
            self._schema,
            now - self._failing_since,
            error,
        )

    def _succeeded(self) -> None:
        if self._failing_since is not None:
            log.warning(
                "outbox relay for %s publishes again after %.0fs",
                self._schema,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None

    async def _loop(self, conn: asyncpg.Connection) -> None:
        # Only this connection's writes, which only delete published rows, commit without
        # waiting for the WAL flush: a delete lost in a PostgreSQL crash republishes those
        # rows, which consumers deduplicate.
        await conn.execute("SET synchronous_commit = off")
        try:
            while True:
                self._wake.clear()
                try:
                    published = await self.publish_batch(conn)
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:  # Kafka unreachable, say: the relay outlives it
                    self._failing(exc)
                    published = 0
                    await asyncio.sleep(self._poll_interval)
                else:
                    self._succeeded()
                if not published and not self._sent:
                    # Every commit that adds rows notifies, and the notification (or the loss
                    # of this connection) ends this wait: looking anyway now and then only
                    # covers a row added without one, or a connection that died silently.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_check)
                elif self._linger and published < self._batch_size:
                    # Busy but not full: wait a moment so that the next batch is bigger (a
                    # quiet relay, woken by one commit, still publishes it at once).
                    await asyncio.sleep(self._linger)
                elif published < self._batch_size:
                    # Fewer rows than a batch: the outbox held no more when it was read, and
                    # every commit since has notified. Asking again at once would only
                    # delete what was just published, a round trip of its own for every
                    # batch of a relay that keeps up; the next notification's round does
                    # that with its own query, or this one after SENT_DELETE_SECONDS.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), SENT_DELETE_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await conn.execute("RESET synchronous_commit")

    async def publish_batch(self, db: asyncpg.Connection | asyncpg.Pool | None = None) -> int:
        """Delete what the previous call published, then publish the next batch; returns how
        many rows this call published (the next call deletes them).

        A row Kafka refuses for a reason of its own (too large, say) is parked at once, one
        refused `park_after` times in a row for another reason too; the rest of the batch
        goes on. An outage (broker unreachable) parks nothing: it is raised, and every row
        not acknowledged is sent again by the next call."""
        db = db or self._pool
        rows = await db.fetch(self._next_batch_sql, self._sent, self._batch_size)
        self._sent = []
        if not rows:
            return 0
        acked, refused = await self._send(rows)
        outage: BaseException | None = None
        to_park: list[tuple[Any, str]] = []
        for row, error in refused:
            verdict = refusal(error)
            if verdict is Refusal.OUTAGE:
                outage = outage or error
                continue
            seq = row["seq"]
            self._failures[seq] = failures = self._failures.get(seq, 0) + 1
            if verdict is Refusal.PERMANENT or failures >= self._park_after:
                to_park.append(
                    (
                        row,
                        f"{type(error).__name__}: {error} (refused {failures}"
                        f" time{'s' if failures > 1 else ''})",
                    )
                )
            else:
                outage = outage or error
        if to_park:
            await self._park(db, to_park)
        seqs = [r["seq"] for r in acked]
        if self._failures:
            for seq in seqs:
                self._failures.pop(seq, None)
        if seqs:
            crash_point("outbox.after_publish")  # published, not yet marked as sent
        self._sent = seqs
        if outage is not None:
            raise outage
        return len(seqs)

    async def _send(self, rows: Sequence[Any]) -> tuple[list[Any], list[tuple[Any, Exception]]]:
        """Send every row; the rows Kafka acknowledged, and those it refused with the error.
        After an outage error no further row is sent (each would wait as long).

        The rows of each partition go out in order as whole record batches (`send_batch`: one
        future a batch instead of one a row), each row's partition picked as the producer's
        partitioner picks it; Kafka accepts or refuses a batch as a whole, as it did the
        batches `send` filled. A round with a row of `LARGE_ROW` bytes or more goes one
        `send` a row, which checks each row's size against the producer's limit."""
        batches = await self._batched(rows)
        if batches is None:
            return await self._send_each(rows)
        queued: list[tuple[list[Any], asyncio.Future[Any]]] = []
        refused: list[tuple[Any, Exception]] = []
        for topic, partition, builder, batch_rows in batches:
            builder.close()
            try:
                sent = await self._producer.send_batch(builder, topic, partition=partition)
            except Exception as exc:
                refused += [(row, exc) for row in batch_rows]
                if refusal(exc) is Refusal.OUTAGE:
                    break
            else:
                queued.append((batch_rows, sent))
        results = await asyncio.gather(*(f for _, f in queued), return_exceptions=True)
        acked = []
        for (batch_rows, _), result in zip(queued, results, strict=True):
            if isinstance(result, Exception):
                refused += [(row, result) for row in batch_rows]
            elif isinstance(result, BaseException):
                raise result
            else:
                acked += batch_rows
        self._published(acked)
        return acked, refused

    async def _batched(self, rows: Sequence[Any]) -> list[tuple[str, int, Any, list[Any]]] | None:
        """The rows as record batches, (topic, partition, batch, its rows), those of one
        partition in the rows' order; None when a row is `LARGE_ROW` bytes or more."""
        partitions: dict[str, list[int]] = {}
        filling: dict[tuple[str, int], tuple[Any, list[Any]]] = {}
        full: list[tuple[str, int, Any, list[Any]]] = []
        for row in rows:
            key, payload = row["key"].encode(), row["payload"]
            if len(key) + len(payload) >= LARGE_ROW:
                return None
            topic = row["topic"]
            known = partitions.get(topic)
            if known is None:
                known = partitions[topic] = sorted(await self._producer.partitions_for(topic))
            where = (topic, self._partitioner(key, known, known))
            headers = record_headers(row["traceparent"])
            builder, batch_rows = filling.get(where) or (None, [])
            if builder is None or not builder.append(
                timestamp=None, key=key, value=payload, headers=headers
            ):
                if builder is not None:  # full: a new one takes the row
                    full.append((*where, builder, batch_rows))
                builder, batch_rows = self._producer.create_batch(), []
                filling[where] = (builder, batch_rows)
                if not builder.append(timestamp=None, key=key, value=payload, headers=headers):
                    return None
            batch_rows.append(row)
        return full + [
            (*where, builder, batch_rows) for where, (builder, batch_rows) in filling.items()
        ]

    async def _send_each(
        self, rows: Sequence[Any]
    ) -> tuple[list[Any], list[tuple[Any, Exception]]]:
        """Send every row with a `send` of its own (which refuses a row over the producer's
        size limit before sending it)."""
        queued: list[tuple[Any, asyncio.Future[Any]]] = []
        refused: list[tuple[Any, Exception]] = []
        for row in rows:
            try:
                queued.append(
                    (
                        row,
                        await self._producer.send(
                            row["topic"],
                            value=row["payload"],
                            key=row["key"].encode(),
                            headers=record_headers(row["traceparent"]),
                        ),
                    )
                )
            except Exception as exc:
                refused.append((row, exc))
                if refusal(exc) is Refusal.OUTAGE:
                    break
        results = await asyncio.gather(*(f for _, f in queued), return_exceptions=True)
        acked = []
        for (row, _), result in zip(queued, results, strict=True):
            if isinstance(result, Exception):
                refused.append((row, result))
            elif isinstance(result, BaseException):
                raise result
            else:
                acked.append(row)
        self._published(acked)
        return acked, refused

    def _published(self, rows: Sequence[Any]) -> None:
        for row in rows:
            event_published(self._schema, row["topic"], row["event_type"] or UNTYPED)

    async def _park(
        self, db: asyncpg.Connection | asyncpg.Pool, rows: Sequence[tuple[Any, str]]
    ) -> None:
        seqs = [r["seq"] for r, _ in rows]
        await db.execute(self._park_sql, seqs, [reason for _, reason in rows])
        for row, reason in rows:
            self._failures.pop(row["seq"], None)
            log.error(
                "outbox row %s of %s (event %s, %s, %d bytes) parked in %s.outbox_parked: %s",
                row["seq"],
                self._schema,
                row["event_id"],
                row["topic"],
                len(row["payload"]),
                self._schema,
                reason,
            )
        self.parked += len(rows)


_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())


def record_headers(traceparent: str | None) -> list[tuple[str, bytes]]:
    """`content-type`, and the row's `traceparent` when it has one (the CloudEvents
    distributed-tracing extension, as a Kafka header: the JSON envelope stays as it is)."""
    if traceparent is None:
        return [_CONTENT_TYPE_HEADER]
    return [_CONTENT_TYPE_HEADER, (TRACEPARENT, traceparent.encode())]


class Refusal(enum.Enum):
    PERMANENT = "permanent"  # the same row will be refused again: park it at once
    OUTAGE = "outage"  # Kafka is unreachable or busy: try the same row again later
    UNKNOWN = "unknown"  # parked when it is refused for the same row `park_after` times


PERMANENT_REFUSALS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
)
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    KafkaConnectionError,
    KafkaTimeoutError,
    ProducerClosed,
    TimeoutError,
    OSError,
)


def refusal(error: BaseException) -> Refusal:
    if isinstance(error, PERMANENT_REFUSALS):
        return Refusal.PERMANENT
    if isinstance(error, OUTAGE_ERRORS) or (isinstance(error, KafkaError) and error.retriable):
        return Refusal.OUTAGE
    return Refusal.UNKNOWN
