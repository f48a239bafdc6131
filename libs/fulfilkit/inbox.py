"""Idempotent consumer: an event's id is recorded with its effect, in one transaction.

A batch is applied in one transaction. If that fails for a reason of the data, each event
is retried alone, a bounded number of times, and one that still fails goes to
`<topic>.dlq` with the error in its headers; the rest keeps flowing. Infrastructure
failures (database or broker unreachable, deadlock victims) are raised so the batch is
consumed again later.

An event whose type does not belong to the topic it came on, or whose source is not the
service owning that topic, is dead-lettered unread: whoever can write to a topic must not
be able to speak for another service (or, through it, for a tenant).

An apply that is also a `Screening` says, from the envelopes of a batch (tenant and type,
parsed with orjson, not validated), which events it may want, with what it reads outside any
transaction once the batch was fetched; the others are skipped there: never validated, no
transaction. The screen may keep more than the apply acts on, never less.

Every dead letter is also kept in `<schema>.dead_letters` (with the record, the error and
whether it can be replayed), where `fulfilkit.deadletters` lists, replays and purges them.
"""

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from fulfilkit.contracts import SOURCE_OF_TOPIC, TOPIC_OF_TYPE, dlq_topic
from fulfilkit.events import CloudEvent
from fulfilkit.metrics import batch_consumed, event_consumed, event_dead_lettered, until_commit
from fulfilkit.received import Envelope, Event, decode_event, read_envelope, type_hint
from fulfilkit.tracing import consuming, record_traceparent

log = logging.getLogger(__name__)

Apply = Callable[[asyncpg.Connection, list[Event[Any]]], Awaitable[None]]
Relevant = Callable[[Event[Any]], bool]


@dataclass(frozen=True)
class Unrecorded:
    """A batch's events (by id) for an apply that records them in the inbox itself, in its
    own first statement (`RecordingApply`): one round trip fewer than the inbox's insert
    followed by that statement. `cte(first)` is the insert, for a data-modifying CTE, taking
    `params()` at `$first` and `$first + 1`; it returns the ids it recorded (`event_id`),
    the events not applied before: the apply applies those, and only those."""

    schema: str
    consumer: str
    ids: list[UUID]

    def cte(self, first: int) -> str:
        return (
            f"INSERT INTO {self.schema}.inbox (consumer, event_id, outcome)"
            f" SELECT ${first}, unnest(${first + 1}::uuid[]), 'applied'"
            " ON CONFLICT DO NOTHING RETURNING event_id"
        )

    def params(self) -> tuple[str, list[UUID]]:
        return self.consumer, self.ids

    async def record(self, conn: asyncpg.Connection, ids: Sequence[UUID]) -> set[UUID]:
        """Records `ids` (those of the batch the apply must apply once) in a statement of its
        own, in the caller's transaction: the ids not recorded before, to apply, and only
        those. For an apply whose other events are idempotent without an inbox row."""
        if not ids:
            return set()
        rows = await conn.fetch(self.cte(1), self.consumer, list(ids))
        return {r["event_id"] for r in rows}


# An apply that records the batch in the inbox itself (`Unrecorded`), given every event of
# the batch once (a duplicate left out): it must apply only the events its insert recorded.
RecordingApply = Callable[[asyncpg.Connection, list[Event[Any]], Unrecorded], Awaitable[None]]


@runtime_checkable
class Screening(Protocol):
    """An apply (`Apply` or `RecordingApply`) that screens a batch before it is validated."""

    async def wanted(self, pool: asyncpg.Pool, envelopes: Sequence[Envelope]) -> Sequence[bool]:
        """Whether each event (by its envelope: a known type of the topic it came on, from
        the topic's owner, with a `tenantid`) may be one this apply acts on, in order. What it
        reads, it reads in statements of their own (no transaction) that start after the
        batch was fetched: so it sees whatever committed before the events were published.
        An event it does not want is skipped unvalidated; raising consumes the batch again."""
        ...


INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


def foreign_event_reason(topic: str, event: CloudEvent | Event[Any]) -> str | None:
    """Why `event` cannot have been published on `topic` by its owner, or None."""
    if TOPIC_OF_TYPE.get(event.type) != topic:
        return f"foreign event: type {event.type!r} does not belong to topic {topic!r}"
    owner = SOURCE_OF_TOPIC.get(topic)
    if event.source != owner:
        return (
            f"foreign event: source {event.source!r} is not {owner!r}, the owner of topic {topic!r}"
        )
    return None


def _envelope(record: Any) -> CloudEvent | None:
    try:
        return CloudEvent.from_bytes(record.value or b"")
    except (ValidationError, ValueError):
        return None


def _unreadable_reason(record: Any, error: Exception) -> str:
    """Why a record that is not a known, valid event was refused: a foreign type is named as
    such, anything else is unparseable (with the validation error)."""
    envelope = _envelope(record)
    if envelope is None:
        return f"unparseable event: {_described(error)}"
    foreign = foreign_event_reason(record.topic, envelope)
    if foreign is not None:
        log.error("event %s on %s dead-lettered: %s", envelope.id, record.topic, foreign)
        return foreign
    return f"unparseable event: {_described(error)}"


def _described(error: Exception) -> str:
    """A validation error as one line per broken field (where, then what), without the
    offending input or the documentation links pydantic adds: short enough that every field
    fits the dead letter's error header, however many types the consumer decodes."""
    if not isinstance(error, ValidationError):
        return str(error)
    fields = [
        ".".join(f"`{part}`" if "." in str(part) else str(part) for part in e["loc"])
        + f": {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)
    ]
    count = error.error_count()
    return f"{count} validation error{'s' if count != 1 else ''}: " + "; ".join(fields)


MAX_ERROR_CHARS = 4000
MAX_TYPE_CHARS = 200


def _text(value: str, limit: int) -> str:
    """Fit for a text column: PostgreSQL refuses NUL characters, which a hostile record has."""
    return value.replace("\x00", "\ufffd")[:limit]


def _headers_json(headers: Sequence[tuple[str, bytes]] | None) -> list[dict[str, str]]:
    """A record's headers as JSON: values as text when they are, else base64."""
    kept = []
    for key, value in headers or ():
        raw = bytes(value or b"")
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = None
        entry = {"key": _text(str(key), 1000)}
        if text is None or "\x00" in text:
            entry["value_base64"] = base64.b64encode(raw).decode()
        else:
            entry["value"] = text
        kept.append(entry)
    return kept


class Inbox:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        consumer: str,
        producer: AIOKafkaProducer,
        apply: Apply | RecordingApply,
        *,
        event_types: Sequence[str] | None = None,
        relevant: Relevant | None = None,
        max_attempts: int = 3,
        records_inbox: bool = False,
    ) -> None:
        """`records_inbox`: `apply` is a `RecordingApply`, which records the events in the
        inbox in its own first statement."""
        self._pool = pool
        self._schema = schema
        self._consumer = consumer
        self._producer = producer
        self._apply = apply
        self._types = frozenset(event_types) if event_types else None
        self._relevant = relevant
        self._max_attempts = max_attempts
        self._records_inbox = records_inbox
        self._screening = apply if isinstance(apply, Screening) else None

    async def handle(self, records: Sequence[Any]) -> None:
        """Apply one polled batch of Kafka ConsumerRecords."""
        batch_consumed(self._schema, len(records))
        if self._screening is not None:
            records = await self._screened(records, self._screening)
        events: list[tuple[Any, Event[Any]]] = []
        for record in records:
            raw = record.value or b""
            if self._skips(record.topic, raw):
                continue
            try:
                event = decode_event(raw)
            except (ValidationError, ValueError) as exc:
                await self._dead_letter(record, _unreadable_reason(record, exc), _envelope(record))
                continue
            event_consumed(self._schema, record.topic, event.type)
            foreign = foreign_event_reason(record.topic, event)
            if foreign is not None:
                log.error("event %s on %s dead-lettered: %s", event.id, record.topic, foreign)
                await self._dead_letter(record, foreign, event)
                continue
            if self._wants(event):
                events.append((record, event))
        if not events:
            return
        try:
            with self._traced(events):
                await self._apply_in_transaction([e for _, e in events])
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            log.warning("batch of %d failed; applying one by one", len(events), exc_info=True)
            for record, event in events:
                with self._traced([(record, event)]):
                    await self._apply_alone(record, event)

    async def _screened(self, records: Sequence[Any], screening: Screening) -> Sequence[Any]:
        """The records left once `screening` turned down what it does not want, in order.
        Only records whose envelope is of a type this consumer handles, belonging to the
        topic they came on, from its owner and with a tenant are screened; the others go on
        as before (skipped, applied or dead-lettered as `handle` decides)."""
        envelopes = [self._screenable(record) for record in records]
        asked = [e for e in envelopes if e is not None]
        if not asked:
            return records
        answers = list(await screening.wanted(self._pool, asked))
        if len(answers) != len(asked):
            raise ValueError(f"screened {len(asked)} events, got {len(answers)} answers")
        wanted = iter(answers)
        kept = []
        for record, envelope in zip(records, envelopes, strict=True):
            if envelope is None or next(wanted):
                kept.append(record)
            else:
                event_consumed(self._schema, record.topic, envelope.type)
        return kept

    def _screenable(self, record: Any) -> Envelope | None:
        envelope = read_envelope(record.value or b"", ids=True)
        if (
            envelope is None
            or envelope.tenantid is None
            or (self._types is not None and envelope.type not in self._types)
            or TOPIC_OF_TYPE.get(envelope.type) != record.topic
            or SOURCE_OF_TOPIC.get(record.topic) != envelope.source
        ):
            return None
        return envelope

    def _skips(self, topic: str, raw: bytes) -> bool:
        """A record of a type this consumer does not handle, from its topic's owner, is
        skipped without validating it: its text hints at its type, and only then is its
        JSON parsed to be sure of its type and source (`fulfilkit.received`)."""
        if self._types is None:
            return False
        hint = type_hint(raw)
        if hint is None or hint in self._types:
            return False
        envelope = read_envelope(raw)
        if (
            envelope is None
            or envelope.type in self._types
            or TOPIC_OF_TYPE.get(envelope.type) != topic
            or SOURCE_OF_TOPIC.get(topic) != envelope.source
        ):
            return False  # decoded, and dead-lettered when it is foreign or unreadable
        event_consumed(self._schema, topic, envelope.type)
        return True

    def _wants(self, event: Event[Any]) -> bool:
        """Events of other types, or that cannot change anything here, are skipped without a
        transaction: with no effect, there is nothing to record or to deduplicate."""
        if self._types is not None and event.type not in self._types:
            return False
        return self._relevant is None or self._relevant(event)

    def _traced(self, events: Sequence[tuple[Any, Event[Any]]]) -> AbstractContextManager[None]:
        """One consumer span per applied batch, continuing the trace context of its events
        (the `traceparent` record header), where the events it causes find it."""
        return consuming(
            f"{self._consumer} process",
            [
                (
                    record.key.decode("utf-8", "replace") if record.key is not None else None,
                    event.id,
                    record_traceparent(record.headers),
                )
                for record, event in events
            ],
        )

    async def _apply_in_transaction(self, events: list[Event[Any]]) -> None:
        with until_commit():  # what the use cases count, they count once it committed
            await self._apply_committed(events)

    async def _apply_committed(self, events: list[Event[Any]]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if self._records_inbox:
                once = list({e.id: e for e in events}.values())
                unrecorded = Unrecorded(self._schema, self._consumer, [e.id for e in once])
                await self._apply(conn, once, unrecorded)  # type: ignore[call-arg]
                return
            fresh = await self._record(conn, [e.id for e in events], "applied")
            unique = {e.id: e for e in events if e.id in fresh}
            if unique:
                await self._apply(conn, list(unique.values()))  # type: ignore[call-arg]

    async def _record(self, conn: asyncpg.Connection, ids: list[Any], outcome: str) -> set[Any]:
        rows = await conn.fetch(
            f"INSERT INTO {self._schema}.inbox (consumer, event_id, outcome)"
            " SELECT $1, unnest($2::uuid[]), $3 ON CONFLICT DO NOTHING RETURNING event_id",
            self._consumer,
            ids,
            outcome,
        )
        return {r["event_id"] for r in rows}

    async def _apply_alone(self, record: Any, event: Event[Any]) -> None:
        error: Exception | None = None
        for attempt in range(self._max_attempts):
            try:
                await self._apply_in_transaction([event])
                return
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:
                error = exc
                await asyncio.sleep(0.05 * 2**attempt)
        log.error("event %s (%s) dead-lettered: %r", event.id, event.type, error)
        await self._dead_letter(record, f"{type(error).__name__}: {error}", event, replayable=True)

    async def _dead_letter(
        self,
        record: Any,
        error: str,
        event: CloudEvent | Event[Any] | None = None,
        *,
        replayable: bool = False,
    ) -> None:
        """Send the record to `<topic>.dlq` and keep it in `dead_letters`; a `replayable` one
        (a valid event its apply refused) is also marked in the inbox, in the same
        transaction, so that Kafka handing it over again skips it until it is replayed.

        Kafka or PostgreSQL unreachable is raised: the batch is consumed again, and the record
        dead-lettered again (one row: rows are unique by the record's topic, partition and
        offset). A row PostgreSQL refuses for its content is logged and left out: the record
        is on the `.dlq` topic, and the consumer goes on."""
        headers = list(record.headers or []) + [
            ("dlq-error", error[:2000].encode()),
            ("dlq-consumer", self._consumer.encode()),
            ("dlq-topic", record.topic.encode()),
            ("dlq-partition", str(record.partition).encode()),
            ("dlq-offset", str(record.offset).encode()),
        ]
        await self._producer.send_and_wait(
            dlq_topic(record.topic), value=record.value, key=record.key, headers=headers
        )
        event_dead_lettered(self._schema, record.topic)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._keep(conn, record, error, event, replayable)
                if replayable and event is not None:
                    await self._record(conn, [event.id], "dead_lettered")
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            log.exception(
                "dead letter of %s[%s]@%s not kept in %s.dead_letters (it is on %s)",
                record.topic,
                record.partition,
                record.offset,
                self._schema,
                dlq_topic(record.topic),
            )
            if replayable and event is not None:
                async with self._pool.acquire() as conn:
                    await self._record(conn, [event.id], "dead_lettered")

    async def _keep(
        self,
        conn: asyncpg.Connection,
        record: Any,
        error: str,
        event: CloudEvent | Event[Any] | None,
        replayable: bool,
    ) -> None:
        await conn.execute(
            f"INSERT INTO {self._schema}.dead_letters (consumer, event_id, event_type, topic,"
            " kafka_partition, kafka_offset, key, value, headers, error, replayable)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (consumer, topic, kafka_partition, kafka_offset) DO NOTHING",
            self._consumer,
            event.id if event is not None else None,
            _text(event.type, MAX_TYPE_CHARS) if event is not None else None,
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value or b"",
            _headers_json(record.headers),
            _text(error, MAX_ERROR_CHARS),
            replayable,
        )
